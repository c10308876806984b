import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { PushHubServiceDefinition } from './gen/pushhub/v1/pushhub.js';

/**
 * One writer for every request: a fresh BinaryWriter (what nice-grpc's ts-proto adapter uses)
 * starts at 128 bytes and grows by copying, three times for a push with a 200-byte body; this
 * one keeps its grown buffer. finish() copies out exactly the request's bytes and resets it.
 */
const writer = new BinaryWriter();

interface MessageType {
  encode(message: unknown, writer: BinaryWriter): BinaryWriter;
  decode(bytes: Uint8Array): unknown;
  fromPartial(object: unknown): unknown;
}

function encodeWith(type: MessageType, message: unknown): Uint8Array {
  try {
    return type.encode(type.fromPartial(message), writer).finish();
  } catch (error) {
    writer.finish(); // drop a half-written message
    throw error;
  }
}

/**
 * PushHubService as a nice-grpc service definition, built from the generated one the way
 * nice-grpc's ts-proto adapter builds it (fromPartial, then encode), but encoding through the
 * reused writer. The client's type stays the generated definition's.
 */
export const pushHubClientDefinition = Object.fromEntries(
  Object.entries(PushHubServiceDefinition.methods).map(([key, method]) => {
    const requestType = method.requestType as unknown as MessageType;
    const responseType = method.responseType as unknown as MessageType;
    return [
      key,
      {
        path: `/${PushHubServiceDefinition.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        requestSerialize: (value: unknown) => encodeWith(requestType, value),
        requestDeserialize: (bytes: Uint8Array) => requestType.decode(bytes),
        responseSerialize: (value: unknown) => encodeWith(responseType, value),
        responseDeserialize: (bytes: Uint8Array) => responseType.decode(bytes),
        options: method.options,
      },
    ];
  }),
) as unknown as typeof PushHubServiceDefinition;
