import { Status } from 'nice-grpc';
import { HubError, Reason, shuttingDown } from '../errors.js';
import type { WriteOp } from '../delivery/commit-queue.js';
import type { PushStreamRequest, PushStreamResponse } from '../gen/pushhub/v1/pushhub.js';
import type { HubServices } from './call-context.js';
import { toPublicPush, toSpecificPush, toWithdraw } from './write-requests.js';

/**
 * Pushes the merchant may have unanswered on one stream. When reached, the hub stops reading
 * the stream, and HTTP/2 flow control holds the merchant back (no unbounded buffering).
 */
export const PUSH_STREAM_WINDOW = 1024;

function toOp(hub: HubServices, merchantId: string, req: PushStreamRequest): WriteOp {
  switch (req.push?.$case) {
    case 'specific':
      return toSpecificPush(hub, merchantId, req.push.value, 'specific.');
    case 'public':
      return toPublicPush(hub, merchantId, req.push.value, 'public.');
    case 'withdraw':
      return toWithdraw(hub, merchantId, req.push.value, 'withdraw.');
    default:
      throw new HubError(Status.INVALID_ARGUMENT, Reason.InvalidArgument, 'push: one of specific, public or withdraw is required');
  }
}

function rejection(ref: bigint, error: unknown): PushStreamResponse {
  if (error instanceof HubError) return { ref, itemId: '', sequence: 0n, code: error.code, message: error.message, reason: error.reason };
  return { ref, itemId: '', sequence: 0n, code: Status.INTERNAL, message: 'internal error', reason: '' };
}

/**
 * Each push is validated and submitted to the group commit as it is read; its response is
 * written once its transaction commits (or it is rejected; the stream goes on). Responses
 * come in commit order, which is the order pushes were read.
 */
export async function* pushStream(
  hub: HubServices,
  merchantId: string,
  requests: AsyncIterable<PushStreamRequest>,
  signal: AbortSignal,
): AsyncGenerator<PushStreamResponse> {
  const answered: PushStreamResponse[] = [];
  let unanswered = 0; // submitted or answered but not yet written back
  let readerDone = false;
  let readerError: unknown;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const notify = () => {
    wakeWriter?.();
    wakeWriter = undefined;
  };
  const answer = (response: PushStreamResponse) => {
    if (response.reason) hub.metrics?.rejected('PushStream', response.reason);
    answered.push(response);
    notify();
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
        unanswered++;
        let op: WriteOp;
        try {
          op = toOp(hub, merchantId, req);
        } catch (error) {
          answer(rejection(req.ref, error));
          continue;
        }
        hub.commits.submit(op).then(
          (ack) => answer({ ref: req.ref, itemId: ack.itemId, sequence: BigInt(ack.seq), code: Status.OK, message: '', reason: '' }),
          (error) => answer(rejection(req.ref, error)),
        );
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
        const response = answered.shift()!;
        unanswered--;
        wakeReader?.();
        wakeReader = undefined;
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
