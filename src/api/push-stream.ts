import { Status } from 'nice-grpc';
import { HubError, Reason, invalidArgument, shuttingDown } from '../core/errors.js';
import type { WriteOp } from '../core/write-ops.js';
import type { PushStreamEntry, PushStreamRequest, PushStreamResponse, PushStreamResult } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import type { HubServices } from './call-context.js';
import { toPublicPush, toSpecificPush, toWithdraw } from './write-requests.js';

/**
 * Pushes the merchant may have unanswered on one stream. When reached, the hub stops reading
 * the stream, and HTTP/2 flow control holds the merchant back (no unbounded buffering). A
 * request read below the window is taken whole, so the count may pass it by one request.
 */
export const PUSH_STREAM_WINDOW = 1024;

/**
 * Results per response at most. Results that are ready together (one group commit settles
 * all of a stream's pushes in it at once) go out in one response, up to this many.
 */
export const PUSH_STREAM_RESULTS_PER_RESPONSE = 1024;

function toOp(hub: HubServices, merchantId: string, req: PushStreamEntry): WriteOp {
  switch (req.push?.$case) {
    case 'specific':
      return toSpecificPush(hub, merchantId, req.push.value, 'specific.');
    case 'public':
      return toPublicPush(hub, merchantId, req.push.value, 'public.');
    case 'withdraw':
      return toWithdraw(hub, merchantId, req.push.value, 'withdraw.');
    default:
      throw new HubError(Reason.InvalidArgument, 'push: one of specific, public or withdraw is required');
  }
}

function rejection(ref: bigint, error: unknown): PushStreamResult {
  if (error instanceof HubError) {
    return { ref, itemId: '', sequence: 0n, code: error.code, message: error.message, reason: error.reason, retryAfterMs: error.retryAfterMs ?? 0 };
  }
  return { ref, itemId: '', sequence: 0n, code: Status.INTERNAL, message: 'internal error', reason: '', retryAfterMs: 0 };
}

/**
 * Each request's pushes are validated and submitted to the group commit as the request is
 * read; a push's result is written once its transaction commits (or it is rejected; the
 * stream goes on). Results come in commit order, which is the order pushes were read, and
 * every result that is ready when the stream can be written goes out in one response: a
 * group commit's results for this stream travel together, and nothing waits for more.
 */
export async function* pushStream(
  hub: HubServices,
  merchantId: string,
  requests: AsyncIterable<PushStreamRequest>,
  signal: AbortSignal,
): AsyncGenerator<PushStreamResponse> {
  let answered: PushStreamResult[] = [];
  let unanswered = 0; // submitted or answered but not yet written back
  let readerDone = false;
  let readerError: unknown;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const notify = () => {
    wakeWriter?.();
    wakeWriter = undefined;
  };
  const answer = (result: PushStreamResult) => {
    if (result.reason) hub.metrics?.rejected('PushStream', result.reason);
    answered.push(result);
    notify();
  };
  const submit = (entry: PushStreamEntry) => {
    unanswered++;
    let op: WriteOp;
    try {
      op = toOp(hub, merchantId, entry);
    } catch (error) {
      answer(rejection(entry.ref, error));
      return;
    }
    hub.commits.submit(op).then(
      (ack) => answer({ ref: entry.ref, itemId: ack.itemId, sequence: BigInt(ack.seq), code: Status.OK, message: '', reason: '', retryAfterMs: 0 }),
      (error) => answer(rejection(entry.ref, error)),
    );
  };

  // On hub shutdown the stream takes no more pushes, answers those it took, then ends with
  // UNAVAILABLE; the merchant resends what was never answered (same request ids).
  const stopped = () => signal.aborted || hub.shutdownSignal.aborted;
  const reading = (async () => {
    try {
      for await (const req of requests) {
        while (unanswered >= PUSH_STREAM_WINDOW && !stopped()) {
          await new Promise<void>((resolve) => (wakeReader = resolve));
        }
        if (stopped()) return;
        // An empty request is a client bug with no push to answer: end the stream, clearly.
        if (req.entries.length === 0) throw invalidArgument('entries', 'at least one push is required');
        for (const entry of req.entries) submit(entry);
      }
    } catch (error) {
      readerError = error;
    } finally {
      readerDone = true;
      notify();
    }
  })();

  const onAbort = () => {
    notify();
    wakeReader?.();
  };
  signal.addEventListener('abort', onAbort);
  hub.shutdownSignal.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (answered.length > 0) {
        let results = answered;
        if (results.length <= PUSH_STREAM_RESULTS_PER_RESPONSE) answered = [];
        else {
          results = answered.slice(0, PUSH_STREAM_RESULTS_PER_RESPONSE);
          answered = answered.slice(PUSH_STREAM_RESULTS_PER_RESPONSE);
        }
        unanswered -= results.length;
        wakeReader?.();
        wakeReader = undefined;
        const response: PushStreamResponse = { results };
        yield response;
        continue;
      }
      if (signal.aborted) return;
      if (hub.shutdownSignal.aborted && unanswered === 0) throw shuttingDown();
      if (readerDone && unanswered === 0) {
        if (readerError) throw readerError;
        return;
      }
      await new Promise<void>((resolve) => (wakeWriter = resolve));
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    hub.shutdownSignal.removeEventListener('abort', onAbort);
    // Not awaited: the reader ends when the call does; its errors were captured above.
    void reading;
  }
}
