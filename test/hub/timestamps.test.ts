import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Status } from 'nice-grpc';
import { Timestamp } from '../../sdk/src/gen/google/protobuf/timestamp.js';
import { PushStreamResponse, ServiceInfo, SubscribeRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { METHOD_PATH, RawClient, basicHeader } from '../reliability/support.js';
import { type Credentials, TestHub } from '../support/hub.js';

/** PushPublicRequest bytes whose info.valid_until is exactly (seconds, nanos). */
function publicPush(title: string, seconds: bigint, nanos: number): Buffer {
  const info = new BinaryWriter();
  ServiceInfo.encode({ key: '', title, body: '', validUntil: undefined, offer: undefined, data: {} }, info);
  info.uint32((4 << 3) | 2).fork();
  Timestamp.encode({ seconds, nanos }, info);
  info.join();
  const request = new BinaryWriter();
  request.uint32((1 << 3) | 2).bytes(info.finish());
  return Buffer.from(request.finish());
}

/** The last length-delimited field fieldNo of a message. */
function field(bytes: Uint8Array, fieldNo: number): Uint8Array {
  const reader = new BinaryReader(bytes);
  let found: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === fieldNo && wireType === WireType.LengthDelimited) found = reader.bytes();
    else reader.skip(wireType, no);
  }
  assert.ok(found, `field ${fieldNo} present`);
  return found;
}

/** Every occurrence of a length-delimited field, in order (a batch's events, say). */
function fields(bytes: Uint8Array, fieldNo: number): Uint8Array[] {
  const reader = new BinaryReader(bytes);
  const found: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === fieldNo && wireType === WireType.LengthDelimited) found.push(reader.bytes());
    else reader.skip(wireType, no);
  }
  return found;
}

describe('valid_until timestamps', () => {
  let t: TestHub;
  let raw: RawClient;
  let merchant: Credentials;
  let receiver: Credentials;

  before(async () => {
    t = await TestHub.start();
    raw = new RawClient(t.address);
    merchant = await t.register('merchant');
    receiver = await t.register('receiver');
  });
  after(async () => {
    raw.close();
    await t.stop();
  });

  const push = (body: Buffer) => raw.unary('PushPublic', body, { authorization: basicHeader(merchant) });

  const refused: [string, bigint, number, RegExp][] = [
    ['seconds = 8.64e12 (the largest a Date holds)', 8_640_000_000_000n, 0, /^info\.valid_until: after 9999-12-31T23:59:59Z$/],
    ['one second past 9999-12-31T23:59:59Z', 253_402_300_800n, 0, /^info\.valid_until: after 9999-12-31T23:59:59Z$/],
    ['seconds past int53', 9_000_000_000_000_000_000n, 0, /^info\.valid_until: after 9999-12-31T23:59:59Z$/],
    ['negative nanos', 2_000_000_000n, -1, /^info\.valid_until: nanos must be 0 to 999999999/],
    ['nanos of a whole second', 2_000_000_000n, 1_000_000_000, /^info\.valid_until: nanos must be 0 to 999999999/],
  ];
  for (const [what, seconds, nanos, message] of refused) {
    it(`refuses valid_until with ${what}: INVALID_ARGUMENT naming info.valid_until`, async () => {
      const before = t.hub.probe.headSequence();
      const outcome = await push(publicPush('t', seconds, nanos));
      assert.equal(outcome.code, Status.INVALID_ARGUMENT, outcome.details);
      assert.match(outcome.details, message);
      assert.equal(t.hub.probe.headSequence(), before, 'nothing stored');
    });
  }

  it('the same checks hold on PushStream', async () => {
    // PushStreamRequest.entries = 1, each a PushStreamEntry { ref = 1, public = 3 }.
    const entry = new BinaryWriter();
    entry.uint32((1 << 3) | 0).uint64(7n);
    entry.uint32((3 << 3) | 2).bytes(publicPush('t', 2_000_000_000n, -5));
    const request = new BinaryWriter();
    request.uint32((1 << 3) | 2).bytes(entry.finish());
    const { code, responses } = await raw.bidi('PushStream', [Buffer.from(request.finish())], { authorization: basicHeader(merchant) });
    assert.equal(code, Status.OK);
    const answer = PushStreamResponse.decode(responses[0]!).results[0]!;
    assert.equal(answer.code, Status.INVALID_ARGUMENT);
    assert.match(answer.message, /^public\.info\.valid_until: nanos must be 0 to 999999999/);
  });

  it('9999-12-31T23:59:59.999999999Z is accepted and delivered exactly, to the nanosecond', async () => {
    const outcome = await push(publicPush('forever', 253_402_300_799n, 999_999_999));
    assert.equal(outcome.code, Status.OK, outcome.details);

    // Read the raw frames of a snapshot: the Timestamp inside must be the one sent.
    const md = new grpc.Metadata();
    md.set('authorization', basicHeader(receiver));
    const frames = await new Promise<Buffer[]>((resolve, reject) => {
      const got: Buffer[] = [];
      const call = raw.client.makeServerStreamRequest(
        METHOD_PATH('Subscribe'),
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.from(SubscribeRequest.encode({ afterSequence: 0n, historyId: '' }).finish()),
        md,
        { deadline: Date.now() + 10_000 },
      );
      call.on('data', (frame: Buffer) => {
        // A response is a batch: SubscribeResponse.events = 1, each a SubscribeEvent.
        const events = fields(frame, 1);
        got.push(...events.map((e) => Buffer.from(e)));
        // SubscribeEvent field 3 is CaughtUp: the snapshot is complete.
        if (events.some((e) => new BinaryReader(e).tag()[0] === 3)) {
          call.cancel();
          resolve(got);
        }
      });
      call.on('error', (error: grpc.ServiceError) => error.code !== grpc.status.CANCELLED && reject(error));
    });
    const item = frames.filter((f) => new BinaryReader(f).tag()[0] === 1).map((f) => field(f, 1)).find((i) => ServiceInfo.decode(field(i, 5)).title === 'forever');
    assert.ok(item, 'the item is in the snapshot');
    assert.deepEqual(Timestamp.decode(field(field(item, 5), 4)), { seconds: 253_402_300_799n, nanos: 999_999_999 });

    // Millisecond precision survives the ordinary path too.
    const ms = await push(publicPush('ms', 253_402_300_799n, 999_000_000));
    assert.equal(ms.code, Status.OK, ms.details);
  });
});
