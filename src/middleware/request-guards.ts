import { type CallContext } from 'nice-grpc';
import { HubError, Reason, invalidArgument } from '../core/errors.js';

/**
 * What the wire definition's deserializer returns for bytes that are not a valid protobuf
 * message of the request type. grpc-js answers a throwing deserializer with INTERNAL; this
 * marker lets the call guard (call-guard.ts) answer INVALID_ARGUMENT instead, after authentication.
 */
export class MalformedRequest {
  constructor(readonly problem: string) {}
}

/** Used as requestDeserialize: decodes, or returns a MalformedRequest instead of throwing. */
export function decodeOrMark<T>(decode: (bytes: Uint8Array) => T): (bytes: Uint8Array) => T | MalformedRequest {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (error) {
      // RangeError covers truncated fields, bad varints and groups nested past the stack.
      return new MalformedRequest(error instanceof Error ? error.message : String(error));
    }
  };
}

export const malformed = (problem: string) =>
  invalidArgument('request', `not a valid protobuf message of the request type (${problem.slice(0, 100)})`);

/** A request stream whose first undecodable message ends the call with INVALID_ARGUMENT. */
export async function* rejectMalformedMessages<T>(requests: AsyncIterable<T>): AsyncIterable<T> {
  for await (const request of requests) {
    if (request instanceof MalformedRequest) throw malformed(request.problem);
    yield request;
  }
}

/**
 * Refuses calls whose metadata is larger than maxBytes (keys plus values) before any work
 * is done for them. HTTP/2 itself refuses header blocks past its own limit (64 KiB) with
 * RST_STREAM; this gives a clear status below that.
 */
export function checkMetadataSize(metadata: CallContext['metadata'], maxBytes: number): void {
  let size = 0;
  for (const [key, values] of metadata) {
    for (const value of values) size += key.length + (typeof value === 'string' ? value.length : value.byteLength);
  }
  if (size > maxBytes) {
    throw new HubError(Reason.MetadataTooLarge,
      `metadata: ${size} bytes of request metadata exceed the limit of ${maxBytes} bytes`,
    );
  }
}
