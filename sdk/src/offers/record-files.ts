import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type ConsumptionRecord, RecordValidationError, toConsumptionRecord } from './records.js';

/** Formats {@link readRecordFile} reads. */
export type RecordFileFormat = 'csv' | 'jsonl';

/** One line of a records file: a record, or why the line could not be used. */
export type RecordLine =
  | {
      /** The line number in the file (1-based). */
      line: number;
      /** The record on it. */
      record: ConsumptionRecord;
    }
  | {
      /** The line number in the file (1-based). */
      line: number;
      /** Why the line is not a valid record. */
      error: string;
    };

/** Options of {@link readRecordFile}. */
export interface ReadRecordFileOptions {
  /** The file's format; by default from its extension (.csv; .jsonl, .ndjson, .json). */
  format?: RecordFileFormat;
  /** Called with the bytes read so far, for a progress bar. */
  onBytes?: (bytesRead: number) => void;
}

/** CSV header names (snake_case or camelCase) mapped to record fields. */
const CSV_COLUMNS: Readonly<Record<string, string>> = {
  receiver_id: 'receiverId',
  receiverid: 'receiverId',
  time: 'time',
  place: 'place',
  amount: 'amount',
  currency: 'currency',
  category: 'category',
  voucher_code: 'voucherCode',
  vouchercode: 'voucherCode',
};
const REQUIRED_COLUMNS = ['receiverId', 'time', 'place', 'amount', 'currency'];

/** The format a file name implies, if any. */
export function recordFormatOf(path: string): RecordFileFormat | undefined {
  if (/\.csv$/i.test(path)) return 'csv';
  if (/\.(jsonl|ndjson|json)$/i.test(path)) return 'jsonl';
  return undefined;
}

/**
 * Reads consumption records from a CSV file (a header row naming the columns receiver_id,
 * time, place, amount, currency and optionally category, voucher_code; RFC 4180 quoting)
 * or a JSON-lines file (one object per line with the ConsumptionRecord field names), streaming,
 * so files larger than memory are fine. Blank lines are skipped; a bad line yields an error
 * entry naming its line number and field instead of stopping the read.
 */
export async function* readRecordFile(path: string, options: ReadRecordFileOptions = {}): AsyncGenerator<RecordLine> {
  const format = options.format ?? recordFormatOf(path);
  if (!format) throw new Error(`${path}: cannot tell the format from the name; pass --format csv or jsonl`);
  const input = createReadStream(path);
  if (options.onBytes) input.on('data', () => options.onBytes!(input.bytesRead));
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  let columns: string[] | undefined;
  let pending = ''; // a CSV record whose quoted field spans lines
  let startLine = 0;
  for await (const text of lines) {
    lineNo++;
    if (format === 'jsonl') {
      if (text.trim() === '') continue;
      yield parseJsonLine(lineNo, text);
      continue;
    }
    if (pending === '' && text.trim() === '') continue;
    if (pending === '') startLine = lineNo;
    pending = pending === '' ? text : `${pending}\n${text}`;
    const fields = splitCsv(pending);
    if (!fields) continue; // an open quote: the record goes on on the next line
    pending = '';
    if (!columns) {
      columns = fields.map((name) => CSV_COLUMNS[name.trim().toLowerCase()] ?? '');
      const missing = REQUIRED_COLUMNS.filter((c) => !columns!.includes(c));
      if (missing.length > 0) throw new Error(`${path}:${startLine}: the header lacks the column(s) ${missing.join(', ')} (expected receiver_id,time,place,amount,currency[,category][,voucher_code])`);
      continue;
    }
    const row: Record<string, string> = {};
    columns.forEach((name, i) => {
      if (name !== '' && fields[i] !== undefined) row[name] = fields[i]!;
    });
    yield toLine(startLine, () => toConsumptionRecord(row));
  }
  if (pending !== '') yield { line: startLine, error: 'unterminated quoted field' };
}

function parseJsonLine(line: number, text: string): RecordLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { line, error: `not JSON: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { line, error: 'must be a JSON object' };
  return toLine(line, () => toConsumptionRecord(value as Record<string, unknown>));
}

function toLine(line: number, build: () => ConsumptionRecord): RecordLine {
  try {
    return { line, record: build() };
  } catch (error) {
    if (error instanceof RecordValidationError) return { line, error: error.message };
    throw error;
  }
}

/** Splits one CSV record (RFC 4180); undefined while a quoted field is still open. */
export function splitCsv(text: string): string[] | undefined {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) return undefined;
  fields.push(field);
  return fields;
}
