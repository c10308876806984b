import type { ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { type CallContext, Metadata, ServerError, Status } from 'nice-grpc';
import { registry as rpcMetricsRegistry } from 'nice-grpc-prometheus';
import type { Counter, Histogram } from 'prom-client';
import { HubError, Reason, invalidArgument } from '../core/errors.js';
import type { SubscribeRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type MessageSink, type SubscribeDeps, SubscribeStream } from '../delivery/subscribe-stream.js';
import { authenticateCall } from '../middleware/auth.js';
import { type CallGuardOptions, revokedBy } from '../middleware/call-guard.js';
import { toCallError } from '../middleware/error-status.js';
import { MalformedRequest, checkMetadataSize, malformed } from '../middleware/request-guards.js';
import { type StallSweep, type StallWatch, resetStalled } from '../middleware/stall-guard.js';
import type { HubServices } from './call-context.js';
import { confirmOnResume } from './receipts.js';

export const SUBSCRIBE_PATH = '/pushhub.v1.PushHubService/Subscribe';

/** What Subscribe needs besides the hub: the call guard's options, the stall sweep, per-RPC metrics. */
export interface SubscribeCallOptions extends CallGuardOptions {
  /** Resets streams whose client accepts no data (undefined: no stall guard). */
  stallSweep?: StallSweep;
  /** Counts Subscribe in nice-grpc-prometheus's grpc_server_* metrics, as its middleware does for the other methods. */
  rpcMetrics?: boolean;
}

/** Subscribe's dependencies, built once per hub, not per stream: every open stream holds them. */
export function subscribeDepsOf(hub: HubServices): SubscribeDeps {
  return {
    changes: hub.changes,
    feed: hub.feed,
    fanout: hub.fanout,
    history: hub.history,
    heartbeatIntervalMs: hub.config.heartbeatIntervalMs,
    subscriberBufferLimit: hub.config.subscriberBufferLimit,
    subscriberBufferBytes: hub.config.subscriberBufferBytes,
    maxStreamsPerReceiver: hub.config.maxStreamsPerReceiver,
    now: hub.now,
    blockedMerchants: hub.accountFilters && (async (receiverId) => (await hub.accountFilters!.listBlocks(receiverId)).map((b) => b.merchantId)),
    suspendedMerchants: hub.accountFilters?.suspendedMerchants,
  };
}

const toSeq = (value: bigint, field: string): number => {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(field, 'out of range');
  return Number(value);
};

/**
 * Serves Subscribe on grpc-js directly, behind the same nice-grpc server: a grpc-js server
 * interceptor (the last one) takes the call over before nice-grpc's handler sees it, and
 * writes each response as a whole gRPC message straight to the call's HTTP/2 stream.
 *
 * Why (issue 17, step 3; figures in docs/performance.md): on nice-grpc every event passed
 * three async generators (the stream's, the call guard's and nice-grpc's), ~5 promises and
 * 8-10 microtasks, and its bytes were copied twice (nice-grpc's `Buffer.from` around every
 * serializer, grpc-js's copy behind the 5-byte prefix); an idle stream held nice-grpc's call
 * context with a Metadata copy, two AbortControllers and the generators. Here a stream is a
 * SubscribeStream written from a callback, a change alone is framed once for all its streams,
 * and the open stream holds no context.
 *
 * What stays exactly as on the other methods, in the same order: the metadata limit, then
 * authentication and the receiver role (auth.ts, the same per-connection cache), then a
 * malformed request; the status and its reason trailer come from the one mapping point
 * (toCallError), so logs and the rejection metrics are the same; a password rotation,
 * deletion or suspension ends the stream as the call guard would (revokedBy); cancellation
 * (client cancel, deadline, reset) fails the stream, which detaches from the fan-out; shutdown
 * ends it through the fan-out (Fanout.failAll) with UNAVAILABLE; a client that accepts no data
 * is reset by the shared stall sweep. nice-grpc still registers the method (grpc-js runs
 * interceptors only for a registered path), with a handler this interceptor never lets run.
 */
export function subscribeInterceptor(hub: HubServices, options: SubscribeCallOptions): grpc.ServerInterceptor {
  const deps = subscribeDepsOf(hub);
  const metrics = options.rpcMetrics ? subscribeRpcMetrics() : undefined;
  return (method, call) => {
    if (method.path !== SUBSCRIBE_PATH) return call as grpc.ServerInterceptingCall;
    // grpc-js keeps the HTTP/2 stream on its base call: the interceptors before this one hand
    // it on as it is (the stall guard skips Subscribe).
    const h2 = (call as unknown as { stream?: ServerHttp2Stream }).stream;
    if (!h2) throw new Error('subscribe: grpc-js base call without its HTTP/2 stream (grpc-js changed?)');
    return new DirectSubscribeCall(call, h2, hub, deps, options, metrics) as unknown as grpc.ServerInterceptingCall;
  };
}

/**
 * The call nice-grpc's handler gets: `start` runs Subscribe here and never forwards the
 * request to the handler, so nothing else is called on this object by grpc-js (see
 * `handleServerStreaming` in grpc-js's server.ts).
 */
class DirectSubscribeCall implements grpc.ServerInterceptingCallInterface {
  private metadata: grpc.Metadata | undefined;
  private request: unknown;
  private requests = 0;
  private stream: SubscribeStream | undefined;
  /** The call ended (cancelled, reset, deadline, or its status went out). */
  private closed = false;
  private headersSent = false;
  private readonly watch: StallWatch | undefined;

  constructor(
    private readonly call: grpc.ServerInterceptingCallInterface,
    private readonly h2: ServerHttp2Stream,
    private readonly hub: HubServices,
    private readonly deps: SubscribeDeps,
    private readonly options: SubscribeCallOptions,
    private readonly metrics: SubscribeRpcMetrics | undefined,
  ) {
    const sweep = options.stallSweep;
    if (sweep && sweep.timeoutMs > 0) {
      this.watch = { pending: 0, since: 0, onStall: () => resetStalled(h2, options.logger, SUBSCRIBE_PATH, call.getPeer(), sweep.timeoutMs) };
    }
  }

  start(): void {
    const call = this.call;
    // The request's arrival, as grpc-js's own server-streaming handler checks it.
    call.start({
      onReceiveMetadata: (metadata) => {
        this.metadata = metadata;
        call.startRead();
      },
      onReceiveMessage: (message) => {
        if (++this.requests > 1) {
          this.sendStatus({ code: grpc.status.UNIMPLEMENTED, details: `Received a second request message for server streaming method ${SUBSCRIBE_PATH}`, metadata: null });
          return;
        }
        this.request = message;
        call.startRead();
      },
      onReceiveHalfClose: () => {
        if (this.requests === 0) {
          this.sendStatus({ code: grpc.status.UNIMPLEMENTED, details: `Received no request message for server streaming method ${SUBSCRIBE_PATH}`, metadata: null });
          return;
        }
        void this.run();
      },
      // After a cancel, a reset, a deadline, or once the status went out (grpc-js reports each).
      onCancel: () => {
        this.closed = true;
        if (this.watch) this.options.stallSweep!.forget(this.watch);
        this.stream?.fail(cancelled());
      },
    });
  }

  private async run(): Promise<void> {
    const { hub, options } = this;
    this.metrics?.started();
    const startedAt = performance.now();
    const context = this.context();
    let revocation: { revoked: boolean; cause?: string; unwatch: () => void } | undefined;
    try {
      checkMetadataSize(context.metadata, options.maxMetadataBytes);
      const authed = await authenticateCall(hub.registry, SUBSCRIBE_PATH, context, options);
      if (this.request instanceof MalformedRequest) throw malformed(this.request.problem);
      const req = this.request as SubscribeRequest;
      const receiverId = authed.account.id;
      // A stream opened with a leaked password does not outlive the rotation.
      const watch: NonNullable<typeof revocation> = { revoked: false, unwatch: () => {} };
      watch.unwatch = hub.registry.watchRevocation(receiverId, (cause) => {
        watch.revoked = true;
        watch.cause = cause;
        this.stream?.fail(revokedBy(cause));
      });
      revocation = watch;
      if (req.historyId.length > 64) throw invalidArgument('history_id', 'at most 64 characters');
      // A cursor of another history confirms nothing: its sequences are not this history's.
      if (req.historyId === '' || req.historyId === hub.history.current().id) confirmOnResume(hub, receiverId, Number(req.afterSequence));
      const afterSeq = toSeq(req.afterSequence, 'after_sequence');
      // A suspended receiver cannot subscribe (checked in the store: cached credentials do not hide it).
      if (hub.accountFilters && (await hub.registry.isSuspended(receiverId))) {
        throw new HubError(Reason.AccountSuspended, 'authorization: this receiver is suspended by the hub operator and cannot subscribe');
      }
      const stream = (this.stream = new SubscribeStream(receiverId, afterSeq, req.historyId, this.deps, this.sink()));
      if (this.closed) stream.fail(cancelled());
      if (watch.revoked) stream.fail(revokedBy(watch.cause));
      await stream.run();
    } catch (error) {
      if (this.closed) {
        this.metrics?.handled('CANCELLED', startedAt);
        return;
      }
      const trailer = Metadata();
      const mapped = toCallError(revocation?.revoked ? revokedBy(revocation.cause) : error, SUBSCRIBE_PATH, { ...context, trailer } as CallContext, options.logger, options.metrics, options.sourceOf);
      const status = mapped instanceof ServerError ? { code: mapped.code, details: mapped.details } : { code: Status.CANCELLED, details: 'The operation has been aborted' };
      this.metrics?.handled(Status[status.code] ?? String(status.code), startedAt);
      const metadata = new grpc.Metadata();
      for (const [key, values] of trailer) for (const value of values) metadata.add(key, value as string);
      this.sendStatus({ ...status, metadata });
    } finally {
      revocation?.unwatch();
    }
  }

  /**
   * The few CallContext fields auth, the source resolver and the error mapping read, built
   * for the call's setup and its end only (an open stream holds none of it): the request
   * metadata as nice-grpc's Metadata, and the peer.
   */
  private context(): CallContext {
    const metadata = Metadata();
    const json = this.metadata?.toJSON() ?? {};
    for (const key of Object.keys(json)) for (const value of json[key]!) metadata.append(key, value as string);
    return { metadata, peer: this.call.getPeer() } as CallContext;
  }

  /** Writes whole gRPC messages to the HTTP/2 stream: grpc-js sends the headers first, and the status after. */
  private sink(): MessageSink {
    const { h2, call, watch, metrics } = this;
    const sweep = this.options.stallSweep;
    // grpc-js calls a write's callback once HTTP/2 has taken its bytes: progress for the stall guard.
    const written = (error?: Error | null) => {
      if (watch) sweep!.sent(watch);
      // A write fails only on a stream that is gone; its close cancels the call.
      if (error && !h2.destroyed) this.stream?.fail(error);
    };
    return {
      write: (message) => {
        if (h2.destroyed) return true; // cancelled: onCancel ends the stream
        if (!this.headersSent) {
          this.headersSent = true;
          call.sendMetadata(new grpc.Metadata());
        }
        if (watch) sweep!.sending(watch);
        metrics?.sent();
        return h2.write(message, written);
      },
      onDrain: (resume) => {
        h2.once('drain', resume);
      },
    };
  }

  sendMetadata(): void {}
  sendMessage(): void {}
  sendStatus(status: Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0]): void {
    this.call.sendStatus(status);
  }
  startRead(): void {}
  getPeer(): string {
    return this.call.getPeer();
  }
  getDeadline(): grpc.Deadline {
    return this.call.getDeadline();
  }
  getHost(): string {
    return this.call.getHost();
  }
  getAuthContext() {
    return this.call.getAuthContext();
  }
  getConnectionInfo() {
    return this.call.getConnectionInfo();
  }
  getMetricsRecorder() {
    return this.call.getMetricsRecorder();
  }
}

/** The failure a cancelled stream ends with (nobody sees it: the call is gone). */
const cancelled = () => new Error('subscribe: the call ended');

interface SubscribeRpcMetrics {
  started(): void;
  sent(): void;
  handled(code: string, startedAt: number): void;
}

/** nice-grpc-prometheus's own series (grpc_server_*), for Subscribe, which its middleware no longer sees. */
function subscribeRpcMetrics(): SubscribeRpcMetrics | undefined {
  const labels = { grpc_type: 'server_stream', grpc_service: 'pushhub.v1.PushHubService', grpc_method: 'Subscribe', grpc_path: SUBSCRIBE_PATH };
  const startedTotal = rpcMetricsRegistry.getSingleMetric('grpc_server_started_total') as Counter | undefined;
  const handledTotal = rpcMetricsRegistry.getSingleMetric('grpc_server_handled_total') as Counter | undefined;
  const sentTotal = rpcMetricsRegistry.getSingleMetric('grpc_server_msg_sent_total') as Counter | undefined;
  const seconds = rpcMetricsRegistry.getSingleMetric('grpc_server_handling_seconds') as Histogram | undefined;
  if (!startedTotal || !handledTotal || !sentTotal || !seconds) return undefined;
  const sent = sentTotal.labels(labels);
  return {
    started: () => startedTotal.inc(labels),
    sent: () => sent.inc(),
    handled: (code, startedAt) => {
      handledTotal.inc({ ...labels, grpc_code: code });
      seconds.observe({ ...labels, grpc_code: code }, (performance.now() - startedAt) / 1000);
    },
  };
}
