// The bare grpc-js baseline server: server-streaming Subscribe(id), unary Publish and a bidi
// PublishStream (acked per message), in-memory fan-out, no database, no auth. Messages for an
// id without a stream wait in an in-memory backlog (not durable), flushed on its next Subscribe.
// usage: node --import tsx baseline-server.ts <port>
import { Metadata, Server, ServerCredentials, type ServerDuplexStream, type ServerWritableStream, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { BaselineService, type PublishRequest, dec, enc } from './baseline-proto.js';

const port = Number(process.argv[2]);
const byId = new Map<string, Set<ServerWritableStream<Buffer, Buffer>>>();
const everyone = new Set<ServerWritableStream<Buffer, Buffer>>();
const backlog = new Map<string, Buffer[]>();

function subscribe(call: ServerWritableStream<Buffer, Buffer>) {
  const id = dec.subscribe(call.request);
  call.sendMetadata(new Metadata()); // tells the client its stream is registered
  let own = byId.get(id);
  if (!own) byId.set(id, (own = new Set()));
  own.add(call);
  everyone.add(call);
  const queued = backlog.get(id);
  if (queued) {
    backlog.delete(id);
    for (const message of queued) call.write(message);
  }
  const drop = () => {
    own.delete(call);
    everyone.delete(call);
    if (own.size === 0 && byId.get(id) === own) byId.delete(id);
  };
  call.on('cancelled', drop);
  call.on('close', drop);
  call.on('error', drop);
}

function deliver(request: PublishRequest): number {
  const message = enc.delivery(request.payload);
  let delivered = 0;
  const targets = request.broadcast ? everyone : byId.get(request.target);
  if (targets && targets.size > 0) {
    for (const call of targets) {
      call.write(message);
      delivered++;
    }
  } else if (!request.broadcast) {
    let queued = backlog.get(request.target);
    if (!queued) backlog.set(request.target, (queued = []));
    queued.push(message);
  }
  return delivered;
}

function publish(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
  const request = dec.publish(call.request);
  callback(null, enc.reply(deliver(request), request.ref));
}

function publishStream(call: ServerDuplexStream<Buffer, Buffer>) {
  call.on('data', (bytes: Buffer) => {
    const request = dec.publish(bytes);
    call.write(enc.reply(deliver(request), request.ref));
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}

const server = new Server();
server.addService(BaselineService, { Subscribe: subscribe, Publish: publish, PublishStream: publishStream });
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
