import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { PushHubServiceDefinition, SubscribeResponse } from './gen/pushhub/v1/pushhub.js';
import { decodeSubscribeResponse } from './subscribe-decoder.js';

/**
 * The one wire module: PushHubService in the form grpc-js and nice-grpc use, built from the
 * generated definition. The SDK's clients use it as is; the server builds its own with
 * {@link WireOptions} (a deserializer that never throws, pre-encoded Subscribe frames).
 */

/**
 * One writer for every message encoded on this thread: a fresh BinaryWriter (what
 * nice-grpc's ts-proto adapter uses) starts at 128 bytes and grows by copying, three times
 * for a push with a 200-byte body; this one keeps its grown buffer. finish() copies out
 * exactly the message's bytes and resets it.
 */
const writer = new BinaryWriter();

interface MessageType {
  encode(message: unknown, writer?: BinaryWriter): BinaryWriter;
  decode(bytes: Uint8Array): unknown;
  fromPartial(object: unknown): unknown;
}

/** grpc-js copies the serialized message with Buffer#copy; wrap (never copy) plain Uint8Arrays. */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Encodes a complete message through the shared writer (e.g. to pre-encode a request once). */
export function encodeMessage<T>(type: { encode(message: T, writer?: BinaryWriter): BinaryWriter }, message: T): Buffer {
  return encodeWith(type as unknown as MessageType, message, false);
}

function encodeWith(type: MessageType, message: unknown, fromPartial: boolean): Buffer {
  try {
    return asBuffer(type.encode(fromPartial ? type.fromPartial(message) : message, writer).finish());
  } catch (error) {
    writer.finish(); // drop a half-written message
    throw error;
  }
}

/** How one side of the wire treats messages; every option defaults to the SDK's behaviour. */
export interface WireOptions {
  /**
   * Wraps each request decoder. The server passes one that returns a marker for
   * undecodable bytes instead of throwing (grpc-js would answer a throw with INTERNAL).
   */
  wrapRequestDecoder?: (decode: (bytes: Uint8Array) => unknown, method: string) => (bytes: Uint8Array) => unknown;
  /**
   * Subscribe responses are written as already-encoded bytes: each change is encoded once at
   * commit, and a batch is the byte concatenation of such frames (server side).
   */
  preEncodedSubscribeFrames?: boolean;
  /**
   * Messages handed to the encoder are built with fromPartial first (the SDK accepts
   * partial requests, as nice-grpc's ts-proto adapter does). The server encodes complete
   * messages and skips it.
   */
  fromPartial?: boolean;
  /**
   * Subscribe responses decode to the SDK's own events (subscribe-decoder.ts `ReceivedEvent[]`,
   * not the generated SubscribeResponse): the receive path of ReceiverClient.
   */
  receivedSubscribeEvents?: boolean;
}

/** Builds PushHubService's wire definition; see {@link WireOptions}. */
export function createWireDefinition(options: WireOptions = {}): typeof PushHubServiceDefinition {
  const wrap = options.wrapRequestDecoder ?? ((decode) => decode);
  const fromPartial = options.fromPartial ?? true;
  return Object.fromEntries(
    Object.entries(PushHubServiceDefinition.methods).map(([key, method]) => {
      const requestType = method.requestType as unknown as MessageType;
      const responseType = method.responseType as unknown as MessageType;
      const preEncoded = options.preEncodedSubscribeFrames === true && method.responseType === SubscribeResponse;
      const received = options.receivedSubscribeEvents === true && method.responseType === SubscribeResponse;
      return [
        key,
        {
          path: `/${PushHubServiceDefinition.fullName}/${method.name}`,
          requestStream: method.requestStream,
          responseStream: method.responseStream,
          // Bytes are sent as they are: the SDK's push stream encodes each push once, when it is
          // queued, and a request is the concatenation of such one-entry requests.
          requestSerialize: (value: unknown) =>
            value instanceof Uint8Array ? asBuffer(value) : encodeWith(requestType, value, fromPartial),
          requestDeserialize: wrap((bytes: Uint8Array) => requestType.decode(bytes), key),
          responseSerialize: preEncoded ? asBuffer : (value: unknown) => encodeWith(responseType, value, fromPartial),
          responseDeserialize: received ? decodeSubscribeResponse : (bytes: Uint8Array) => responseType.decode(bytes),
          options: method.options,
        },
      ];
    }),
  ) as unknown as typeof PushHubServiceDefinition;
}

/**
 * PushHubService for the SDK's clients: requests built with fromPartial and encoded through
 * the reused writer. The client's type stays the generated definition's.
 */
export const pushHubClientDefinition = createWireDefinition();

/** The same, with Subscribe responses as the SDK's own events (ReceiverClient only). */
export const receiverClientDefinition = createWireDefinition({ receivedSubscribeEvents: true });
