import { applyBatch } from '../../core/apply-batch.js';
import { createWorkingSetView, workingSetQueryOf } from '../../core/working-set.js';
import type { BatchLimits, BatchResult } from '../../core/write-ops.js';
import type { BatchCommitter, BatchWrites, WorkingSetCommitter } from '../ports.js';

/**
 * The hub's BatchCommitter on PostgreSQL: the domain's applyBatch runs inside the writer's
 * transaction over the working set the batch names (core/working-set.ts), loaded under the
 * head lock in a few queries, and its writes go back in a few multi-row statements.
 *
 * `published` is what was stored (an item pushed and replaced in the same batch is not): the
 * same rows the writer reports to the node's change feed, which alone publishes them.
 * A batch resolves after the feed has published it.
 */
export function createPostgresBatchCommitter(
  writer: WorkingSetCommitter & { ready(): Promise<void> },
  limits: BatchLimits,
  /** Resolves once this node's feed has published up to seq (or tried to). */
  published: (seq: number) => Promise<void>,
): BatchCommitter {
  return {
    ready: () => writer.ready(),
    async commit(ops, nowMs) {
      const decided = await writer.commit(workingSetQueryOf(ops, nowMs, limits), (ws, head) => {
        const view = createWorkingSetView(ws, head);
        const result = applyBatch(view, ops, head, nowMs, limits);
        return { ...result, writes: view.writes(result.head) };
      });
      const { writes, ...result }: BatchResult & { writes: BatchWrites } = decided;
      // Acknowledged only once this node's feed has published the batch, as on SQLite: a
      // subscriber that opens after the ack finds the push in its backlog, not only live.
      // Only when another node committed in between does this wait for a read.
      await published(result.head);
      return { ...result, published: writes.inserts };
    },
    purge: (nowMs, requestCutoffMs) => writer.purge(nowMs, requestCutoffMs),
    close: () => writer.close(),
  };
}
