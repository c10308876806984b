import type { ChangeRecord } from '../core/records.js';

/**
 * The rows a page may hold: up to `maxBytes` of frames, and always the first row, so a page
 * is never empty while rows remain (ChangeReader's paging contract, on every backend).
 */
export function trimToBytes(rows: ChangeRecord[], maxBytes: number): ChangeRecord[] {
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    bytes += rows[i]!.frame.byteLength;
    if (i > 0 && bytes > maxBytes) return rows.slice(0, i);
  }
  return rows;
}
