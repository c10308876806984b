import { type CallContext, type ServerMiddleware } from 'nice-grpc';
import { HubError, Reason, invalidArgument } from '../core/errors.js';

/**
 * What the wire definition's deserializer returns for bytes that are not a valid protobuf
 * message of the request type. grpc-js answers a throwing deserializer with INTERNAL; this
 * marker lets the guard below answer INVALID_ARGUMENT instead, after authentication.
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

const malformed = (problem: string) =>
  invalidArgument('request', `not a valid protobuf message of the request type (${problem.slice(0, 100)})`);

async function* rejectMalformedMessages<T>(requests: AsyncIterable<T>): AsyncIterable<T> {
  for await (const request of requests) {
    if (request instanceof MalformedRequest) throw malformed(request.problem);
    yield request;
  }
}

/**
 * Ends a call whose request (or any message of a request stream) could not be decoded with
 * INVALID_ARGUMENT. Runs after authentication, so an anonymous caller learns nothing more
 * than UNAUTHENTICATED.
 */
export function malformedRequestMiddleware(): ServerMiddleware {
  return async function* rejectMalformed(call, context: CallContext) {
    if (call.requestStream) {
      return yield* call.next(rejectMalformedMessages(call.request) as typeof call.request, context);
    }
    if (call.request instanceof MalformedRequest) throw malformed(call.request.problem);
    return yield* call.next(call.request, context);
  };
}

/**
 * Refuses calls whose metadata is larger than maxBytes (keys plus values) before any work
 * is done for them. HTTP/2 itself refuses header blocks past its own limit (64 KiB) with
 * RST_STREAM; this gives a clear status below that.
 */
export function metadataLimitMiddleware(maxBytes: number): ServerMiddleware {
  return async function* limitMetadata(call, context: CallContext) {
    let size = 0;
    for (const [key, values] of context.metadata) {
      for (const value of values) size += key.length + (typeof value === 'string' ? value.length : value.byteLength);
    }
    if (size > maxBytes) {
      throw new HubError(Reason.MetadataTooLarge,
        `metadata: ${size} bytes of request metadata exceed the limit of ${maxBytes} bytes`,
      );
    }
    return yield* call.next(call.request, context);
  };
}
