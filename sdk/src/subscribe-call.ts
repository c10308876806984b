import { Client as GrpcClient, ChannelCredentials, Metadata as GrpcMetadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { type Channel, ClientError } from 'nice-grpc';
import { REASON_TRAILER } from './errors.js';
import type { ReceivedEvent } from './subscribe-decoder.js';
import { receiverClientDefinition } from './wire-definition.js';

/** The wire module's Subscribe (typed as the generated definition, built as a method map). */
const SUBSCRIBE = (receiverClientDefinition as unknown as Record<string, { path: string; requestSerialize: (value: unknown) => Buffer; responseDeserialize: (bytes: Buffer) => ReceivedEvent[] }>).subscribe!;

/** A grpc-js client on a nice-grpc channel (the same connection), for Subscribe only. */
export function createSubscribeClient(channel: Channel): GrpcClient {
  // With channelOverride the address and credentials are unused: the channel has its own.
  return new GrpcClient('unused', ChannelCredentials.createInsecure(), { channelOverride: channel as never });
}

/**
 * One Subscribe call read straight from grpc-js's stream: `read()` hands out what has arrived
 * (one response's events) or undefined, `wait()` resolves when there is more or the call
 * ended, and `error` is then the failure (a nice-grpc ClientError, so the SDK's one error
 * mapping, toChannelError, reads it as it reads every other call's) with the hub's reason.
 *
 * Why not the nice-grpc client: each response passed nice-grpc's readableToAsyncIterable and
 * its method generator before the SDK's own generator, two async generator layers and their
 * promises per event at one event per message (issue 17, step 5; docs/performance.md).
 */
export class SubscribeCall {
  private readonly call: ClientReadableStream<ReceivedEvent[]>;
  private wake: (() => void) | undefined;
  private ended = false;
  /** Why the call ended (undefined: the hub ended it with OK, or it is still open). */
  error: unknown;
  /** The hub's reason trailer of the failure ('' if none). */
  reason = '';

  constructor(client: GrpcClient, request: { afterSequence: bigint; historyId: string }, authorization: string) {
    const metadata = new GrpcMetadata();
    metadata.set('authorization', authorization);
    this.call = client.makeServerStreamRequest(SUBSCRIBE.path, SUBSCRIBE.requestSerialize as never, SUBSCRIBE.responseDeserialize as never, request, metadata, {});
    const wakeUp = () => {
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    };
    this.call.on('readable', wakeUp);
    this.call.on('error', (error: ServiceError) => {
      this.reason = String(error.metadata?.get(REASON_TRAILER)[0] ?? '');
      this.error = new ClientError(SUBSCRIBE.path, error.code as number, error.details);
      this.ended = true;
      wakeUp();
    });
    this.call.on('end', () => {
      this.ended = true;
      wakeUp();
    });
  }

  /** The next response's events, or undefined when none has arrived (then `wait`, unless `done`). */
  read(): ReceivedEvent[] | undefined {
    return (this.call.read() as ReceivedEvent[] | null) ?? undefined;
  }

  /** The call ended: nothing more will arrive (see `error`). */
  get done(): boolean {
    return this.ended && this.call.readableLength === 0;
  }

  /** Resolves when `read` has something or the call ended. */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** Cancels the call (the hub sees the stream reset). */
  cancel(): void {
    this.call.cancel();
  }
}
