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
 */
export function createPostgresBatchCommitter(writer: WorkingSetCommitter & { ready(): Promise<void> }, limits: BatchLimits): BatchCommitter {
  return {
    ready: () => writer.ready(),
    async commit(ops, nowMs) {
      const decided = await writer.commit(workingSetQueryOf(ops, nowMs, limits), (ws, head) => {
        const view = createWorkingSetView(ws, head);
        const result = applyBatch(view, ops, head, nowMs, limits);
        return { ...result, writes: view.writes(result.head) };
      });
      const { writes, ...result }: BatchResult & { writes: BatchWrites } = decided;
      return { ...result, published: writes.inserts };
    },
    purge: (nowMs, requestCutoffMs) => writer.purge(nowMs, requestCutoffMs),
    close: () => writer.close(),
  };
}
