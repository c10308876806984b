import { PushHubServiceDefinition, SubscribeResponse } from './gen/pushhub/v1/pushhub.js';
import { recordValidUntil } from './api/wire-timestamps.js';
import { decodeOrMark } from './middleware/request-guards.js';

/** grpc-js copies the serialized message with Buffer#copy; wrap (never copy) plain Uint8Arrays. */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

type Methods = typeof PushHubServiceDefinition.methods;

/**
 * The server-side definition of PushHubService in grpc-js form, built from the generated
 * one, except that Subscribe writes already-encoded frames as they are: each change is
 * encoded once at commit (see delivery/frames.ts) and shared by every stream it goes to.
 */
export const pushHubWireDefinition = Object.fromEntries(
  Object.entries(PushHubServiceDefinition.methods as Methods).map(([key, method]) => {
    const requestType = method.requestType as { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): unknown };
    const responseType = method.responseType as typeof requestType;
    const framesAlreadyEncoded = method.responseType === SubscribeResponse;
    // Pushes keep valid_until as sent, for range checks and an exact round trip (see wire-timestamps.ts).
    const recordTimestamps = (recordValidUntil as Record<string, (bytes: Uint8Array, decoded: never) => void>)[key];
    return [
      key,
      {
        path: `/${PushHubServiceDefinition.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        // Undecodable bytes become a marker the request guard answers with INVALID_ARGUMENT.
        requestDeserialize: decodeOrMark((bytes: Uint8Array) => {
          const decoded = requestType.decode(bytes);
          recordTimestamps?.(bytes, decoded as never);
          return decoded;
        }),
        requestSerialize: (value: unknown) => asBuffer(requestType.encode(value).finish()),
        responseDeserialize: (bytes: Uint8Array) => responseType.decode(bytes),
        responseSerialize: framesAlreadyEncoded
          ? asBuffer
          : (value: unknown) => asBuffer(responseType.encode(value).finish()),
        options: method.options,
      },
    ];
  }),
);
