import assert from 'node:assert/strict';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { ClientError, Metadata, Status } from 'nice-grpc';
import {
  Audience,
  type PushStreamRequest,
  PushStreamResponse,
  Role,
  type ServiceInfo,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, TestHub, basicAuth } from '../support/hub.js';
import { type CallOutcome, RawClient, basicHeader, outcomeOf, statusName } from './support.js';

/** Statuses a hostile request may get; INTERNAL, UNKNOWN and UNAVAILABLE never. */
const CLEAR_STATUSES = new Set([
  Status.OK,
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.OUT_OF_RANGE,
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
  Status.RESOURCE_EXHAUSTED,
]);

/** Byte sequences that are not UTF-8: a lone continuation byte, 0xFF, a surrogate, overlong forms, a truncated sequence. */
const INVALID_UTF8: Buffer[] = [
  Buffer.from([0x80]),
  Buffer.from([0x61, 0xff, 0x62]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0x61, 0xe2, 0x82]),
];

/** A protobuf message built field by field; string fields get raw bytes, so anything goes. */
type Field = [number, 'varint', number | bigint] | [number, 'bytes', Uint8Array];
function message(...fields: Field[]): Buffer {
  const w = new BinaryWriter();
  for (const field of fields) {
    if (field[1] === 'varint') w.tag(field[0], WireType.Varint).int64(field[2]);
    else w.tag(field[0], WireType.LengthDelimited).bytes(field[2]);
  }
  return Buffer.from(w.finish());
}
const text = (s: string) => Buffer.from(s, 'utf8');
const TITLE: Field = [2, 'bytes', text('title')];

/**
 * Bytes that do not decode as any message: truncated, bad varint, bad wire type, deep groups.
 * (A stray end-group tag or field number 0 ends the message for the ts-proto decoder: it
 * decodes as the fields before it, which the property tests below cover.)
 */
const UNDECODABLE: Record<string, Buffer> = {
  'truncated length-delimited field': Buffer.from([0x0a, 0x10, 0x01]),
  'unterminated varint': Buffer.from([0x08, 0xff, 0xff, 0xff]),
  'length past the end (4 GiB)': Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]),
  'wire type 7': Buffer.from([0x0f, 0x00]),
  'groups nested 60000 deep': Buffer.alloc(60_000, 0x0b),
};

const METHODS = ['Register', 'PushSpecific', 'PushPublic', 'Withdraw', 'PushStream', 'ListItems', 'Subscribe', 'RotatePassword'] as const;
type Method = (typeof METHODS)[number];

describe('hostile and bad input', function () {
  let hub: TestHub;
  let client: HubClient;
  let raw: RawClient;
  let merchant: Credentials;
  let receiver: Credentials;
  /** RotatePassword's caller, so a rotation that went through could not lock out the others. */
  let rotator: Credentials;
  let db: Database.Database;

  before(async () => {
    hub = await TestHub.start();
    client = hub.client();
    raw = new RawClient(hub.address);
    merchant = await hub.register('merchant');
    receiver = await hub.register('receiver');
    rotator = await hub.register('merchant');
    db = new Database(hub.config.dbPath, { readonly: true });
  });
  after(async () => {
    db.close();
    raw.close();
    await hub.stop();
  });

  /** What the hub holds: every write moves the head sequence, every registration adds an account. */
  const stored = () => ({
    head: hub.hub.probe.headSequence(),
    accounts: db.prepare('SELECT count(*) FROM accounts').pluck().get() as number,
  });

  /** Credentials each method needs to get past authentication. */
  const authFor = (method: Method): Record<string, string> =>
    method === 'Register' ? {} : { authorization: basicHeader(method === 'Subscribe' ? receiver : method === 'RotatePassword' ? rotator : merchant) };

  /** Sends raw bytes to a method of any kind and reports the status. */
  async function sendRaw(method: Method, body: Buffer, metadata = authFor(method)): Promise<{ code: Status; details: string }> {
    if (method === 'Subscribe') return raw.firstOfServerStream(method, body, metadata);
    if (method === 'PushStream') {
      const result = await raw.bidi(method, [body], metadata);
      // A push the hub rejects comes back as a response with its code; the stream stays OK.
      if (result.code === Status.OK && result.responses.length === 1) {
        const response = PushStreamResponse.decode(result.responses[0]!).results[0]!;
        return { code: response.code as Status, details: response.message };
      }
      return result;
    }
    return raw.unary(method, body, metadata);
  }

  describe('undecodable protobuf bytes', () => {
    for (const method of METHODS) {
      it(`${method}: every kind of undecodable body is INVALID_ARGUMENT (after authentication), nothing stored`, async () => {
        for (const [what, body] of Object.entries(UNDECODABLE)) {
          const before = stored();
          const outcome = await sendRaw(method, body);
          assert.equal(statusName(outcome.code), 'INVALID_ARGUMENT', `${what}: ${outcome.details}`);
          assert.match(outcome.details, /not a valid protobuf message/);
          if (method !== 'Register') {
            const anonymous = await sendRaw(method, body, {});
            assert.equal(statusName(anonymous.code), 'UNAUTHENTICATED', `${what} without credentials`);
          }
          assert.deepEqual(stored(), before, what);
        }
      });
    }

    it('PushStream: a malformed message mid-stream ends it with INVALID_ARGUMENT after answering the pushes before it', async () => {
      const good = (ref: number) =>
        message([1, 'bytes', message([1, 'varint', ref], [3, 'bytes', message([1, 'bytes', message(TITLE)])])]);
      const before = stored();
      const result = await raw.bidi('PushStream', [good(1), good(2), UNDECODABLE['truncated length-delimited field']!, good(4)], authFor('PushStream'));
      assert.equal(statusName(result.code), 'INVALID_ARGUMENT', result.details);
      assert.equal(result.responses.length, 2);
      assert.equal(stored().head, before.head + 2);
    });
  });

  describe('invalid UTF-8 in every string field', () => {
    /** [method, field named in the error, body builder taking the bad bytes]. */
    const info = (...fields: Field[]) => message(TITLE, ...fields);
    const cases: [Method, string, (bad: Buffer) => Buffer][] = [
      ['Register', 'display_name', (b) => message([1, 'varint', Role.ROLE_RECEIVER], [2, 'bytes', b])],
      ['Register', 'region_code', (b) => message([1, 'varint', Role.ROLE_RECEIVER], [3, 'bytes', b])],
      ['Register', 'registration_token', (b) => message([1, 'varint', Role.ROLE_RECEIVER], [4, 'bytes', b])],
      ['PushSpecific', 'receiver_id', (b) => message([1, 'bytes', b], [2, 'bytes', info()])],
      ['PushSpecific', 'info.key', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([1, 'bytes', b])])],
      ['PushSpecific', 'info.title', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', message([2, 'bytes', b])])],
      ['PushSpecific', 'info.body', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([3, 'bytes', b])])],
      ['PushSpecific', 'info.data', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([8, 'bytes', message([1, 'bytes', b], [2, 'bytes', text('v')])])])],
      ['PushSpecific', 'info.data[k]', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([8, 'bytes', message([1, 'bytes', text('k')], [2, 'bytes', b])])])],
      ['PushSpecific', 'info.voucher.code', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([7, 'bytes', message([1, 'bytes', b])])])],
      ['PushSpecific', 'info.voucher.currency', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info([7, 'bytes', message([3, 'bytes', b])])])],
      ['PushSpecific', 'request_id', (b) => message([1, 'bytes', text(receiver.id)], [2, 'bytes', info()], [3, 'bytes', b])],
      ['PushPublic', 'info.title', (b) => message([1, 'bytes', message([2, 'bytes', b])])],
      ['PushPublic', 'request_id', (b) => message([1, 'bytes', info()], [2, 'bytes', b])],
      ['Withdraw', 'item_id', (b) => message([1, 'bytes', b])],
      ['Withdraw', 'key', (b) => message([2, 'bytes', b])],
      ['Withdraw', 'receiver_id', (b) => message([2, 'bytes', text('k')], [3, 'bytes', b])],
      ['Withdraw', 'request_id', (b) => message([2, 'bytes', text('k')], [4, 'bytes', b])],
      ['ListItems', 'receiver_id', (b) => message([1, 'bytes', b])],
      ['ListItems', 'page_token', (b) => message([4, 'bytes', b])],
      ['PushStream', 'specific.info.title', (b) => message([1, 'bytes', message([1, 'varint', 1], [2, 'bytes', message([1, 'bytes', text(receiver.id)], [2, 'bytes', message([2, 'bytes', b])])])])],
      ['PushStream', 'public.request_id', (b) => message([1, 'bytes', message([1, 'varint', 1], [3, 'bytes', message([1, 'bytes', info()], [2, 'bytes', b])])])],
      ['PushStream', 'withdraw.key', (b) => message([1, 'bytes', message([1, 'varint', 1], [4, 'bytes', message([2, 'bytes', b])])])],
    ];
    for (const [method, field, build] of cases) {
      it(`${method} ${field}: INVALID_ARGUMENT naming the field, nothing stored`, async () => {
        for (const bad of INVALID_UTF8) {
          const before = stored();
          const outcome = await sendRaw(method, build(bad));
          assert.equal(statusName(outcome.code), 'INVALID_ARGUMENT', `${bad.toString('hex')}: ${outcome.details}`);
          assert.ok(outcome.details.startsWith(field), `"${outcome.details}" should name ${field}`);
          assert.deepEqual(stored(), before);
        }
      });
    }
  });

  describe('empty, out-of-range and unknown values', () => {
    it('an empty message to each RPC gets a clear status', async () => {
      const expected: Record<Method, Status> = {
        Register: Status.INVALID_ARGUMENT, // role is required
        PushSpecific: Status.INVALID_ARGUMENT, // receiver_id is required
        PushPublic: Status.INVALID_ARGUMENT, // info is required
        Withdraw: Status.INVALID_ARGUMENT, // item_id or key is required
        PushStream: Status.INVALID_ARGUMENT, // entries: at least one push is required
        ListItems: Status.OK, // all filters optional
        Subscribe: Status.OK, // cursor 0: the current state
        RotatePassword: Status.INVALID_ARGUMENT, // placeholder, replaced below
      };
      for (const method of METHODS) {
        if (method === 'RotatePassword') continue; // changes the shared merchant's password; covered by the auth matrix
        const before = stored();
        const outcome = await sendRaw(method, Buffer.alloc(0));
        assert.equal(statusName(outcome.code), statusName(expected[method]), `${method}: ${outcome.details}`);
        assert.deepEqual(stored(), before, method);
      }
    });

    const infoOf = (overrides: Partial<ServiceInfo>): ServiceInfo => ({ key: '', title: 't', body: '', data: {}, validUntil: undefined, offer: undefined, ...overrides });
    const pushCases: [string, Partial<ServiceInfo>, RegExp][] = [
      ['percent_off 101', { offer: { $case: 'discount', value: { percentOff: 101 } } }, /^info\.discount\.percent_off/],
      ['percent_off 2^32-1', { offer: { $case: 'discount', value: { percentOff: 2 ** 32 - 1 } } }, /^info\.discount\.percent_off/],
      ['negative voucher amount', { offer: { $case: 'voucher', value: { code: 'X', amountOff: -1n, currency: 'EUR', minSpend: 0n } } }, /^info\.voucher\.amount_off/],
      ['int64 min voucher min_spend', { offer: { $case: 'voucher', value: { code: 'X', amountOff: 1n, currency: 'EUR', minSpend: -(2n ** 63n) } } }, /^info\.voucher\.min_spend/],
      ['lowercase currency', { offer: { $case: 'voucher', value: { code: 'X', amountOff: 1n, currency: 'eur', minSpend: 0n } } }, /^info\.voucher\.currency/],
      ['valid_until in the past', { validUntil: new Date(1000) }, /^info\.valid_until/],
      ['valid_until before 1970', { validUntil: new Date(-1e12) }, /^info\.valid_until/],
      ['title of 201 characters', { title: 'x'.repeat(201) }, /^info\.title/],
      ['body of 4097 bytes', { body: 'é'.repeat(2049) }, /^info\.body/],
      ['key of 129 characters', { key: 'k'.repeat(129) }, /^info\.key/],
      ['33 data entries', { data: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, /^info\.data/],
      ['a U+FFFD in the title', { title: 'a\uFFFDb' }, /^info\.title/],
    ];
    for (const [what, overrides, field] of pushCases) {
      it(`a push with ${what} is INVALID_ARGUMENT naming the field, nothing stored`, async () => {
        const before = stored();
        const specific = await outcomeOf((o) => client.pushSpecific({ receiverId: receiver.id, info: infoOf(overrides), requestId: '' }, { ...o, metadata: basicAuth(merchant) }));
        const pub = await outcomeOf((o) => client.pushPublic({ info: infoOf(overrides), requestId: '' }, { ...o, metadata: basicAuth(merchant) }));
        for (const outcome of [specific, pub]) {
          assert.equal(statusName(outcome.code), 'INVALID_ARGUMENT', outcome.details);
          assert.match(outcome.details, field);
        }
        assert.deepEqual(stored(), before);
      });
    }

    it('a valid_until beyond the representable range (raw seconds) is INVALID_ARGUMENT', async () => {
      for (const seconds of [2n ** 62n, -(2n ** 62n), 9_000_000_000_000n]) {
        const timestamp = message([1, 'varint', seconds]);
        const body = message([1, 'bytes', message(TITLE, [4, 'bytes', timestamp])]);
        const before = stored();
        const outcome = await sendRaw('PushPublic', body);
        assert.equal(statusName(outcome.code), 'INVALID_ARGUMENT', `${seconds}: ${outcome.details}`);
        assert.match(outcome.details, /^info\.valid_until/);
        assert.deepEqual(stored(), before);
      }
    });

    it('unknown enum values and out-of-range numbers in the other RPCs get clear statuses', async () => {
      const m = basicAuth(merchant);
      const r = basicAuth(receiver);
      const cases: [string, () => Promise<unknown>, Status, RegExp][] = [
        ['role 99', () => client.register({ role: 99 as Role, displayName: '', regionCode: '', registrationToken: '' }), Status.INVALID_ARGUMENT, /^role/],
        ['role -1', () => client.register({ role: -1 as Role, displayName: '', regionCode: '', registrationToken: '' }), Status.INVALID_ARGUMENT, /^role/],
        ['region "1a"', () => client.register({ role: Role.ROLE_RECEIVER, displayName: '', regionCode: '1a', registrationToken: '' }), Status.INVALID_ARGUMENT, /^region_code/],
        ['display name of 201 characters', () => client.register({ role: Role.ROLE_RECEIVER, displayName: 'd'.repeat(201), regionCode: '', registrationToken: '' }), Status.INVALID_ARGUMENT, /^display_name/],
        ['audience 99', () => client.listItems({ receiverId: '', audience: 99 as Audience, pageSize: 0, pageToken: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^audience/],
        ['audience 99 with a receiver', () => client.listItems({ receiverId: receiver.id, audience: 99 as Audience, pageSize: 0, pageToken: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^audience/],
        ['receiver with AUDIENCE_PUBLIC', () => client.listItems({ receiverId: receiver.id, audience: Audience.AUDIENCE_PUBLIC, pageSize: 0, pageToken: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^receiver_id/],
        ['page_size 5001', () => client.listItems({ receiverId: '', audience: 0, pageSize: 5001, pageToken: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^page_size/],
        ['page_size 2^32-1', () => client.listItems({ receiverId: '', audience: 0, pageSize: 2 ** 32 - 1, pageToken: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^page_size/],
        ['page token of junk', () => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '!!not-a-token!!' }, { metadata: m }), Status.INVALID_ARGUMENT, /^page_token/],
        ['page token "12abc"', () => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: Buffer.from('12abc').toString('base64url') }, { metadata: m }), Status.INVALID_ARGUMENT, /^page_token/],
        ['page token of a negative number', () => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: Buffer.from('-5').toString('base64url') }, { metadata: m }), Status.INVALID_ARGUMENT, /^page_token/],
        ['a merchant id as receiver_id', () => client.pushSpecific({ receiverId: merchant.id, info: infoOf({}), requestId: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^receiver_id/],
        ['an unregistered receiver_id', () => client.pushSpecific({ receiverId: 'R00-0000000000000000', info: infoOf({}), requestId: '' }, { metadata: m }), Status.NOT_FOUND, /^receiver_id/],
        ['request_id of 129 characters', () => client.pushPublic({ info: infoOf({}), requestId: 'r'.repeat(129) }, { metadata: m }), Status.INVALID_ARGUMENT, /^request_id/],
        ['withdraw key of 129 characters', () => client.withdraw({ itemId: '', key: 'k'.repeat(129), receiverId: '', requestId: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^key/],
        ['withdraw item_id not an id', () => client.withdraw({ itemId: "I' OR 1=1 --", key: '', receiverId: '', requestId: '' }, { metadata: m }), Status.INVALID_ARGUMENT, /^item_id/],
        ['after_sequence 2^64-1', async () => { for await (const _ of client.subscribe({ afterSequence: 2n ** 64n - 1n }, { metadata: r })) break; }, Status.INVALID_ARGUMENT, /^after_sequence/],
        ['history_id of 65 characters', async () => { for await (const _ of client.subscribe({ afterSequence: 0n, historyId: 'H'.repeat(65) }, { metadata: r })) break; }, Status.INVALID_ARGUMENT, /^history_id/],
      ];
      for (const [what, run, code, field] of cases) {
        const before = stored();
        const outcome = await outcomeOf(run);
        assert.equal(statusName(outcome.code), statusName(code), `${what}: ${outcome.details}`);
        assert.match(outcome.details, field, what);
        assert.deepEqual(stored(), before, what);
      }
    });

    it('a message over maxMessageBytes (64 KiB) is RESOURCE_EXHAUSTED, on every RPC', async () => {
      const big = message([2, 'bytes', message([2, 'bytes', Buffer.alloc(hub.config.maxMessageBytes, 0x61)])]);
      for (const method of METHODS) {
        const before = stored();
        const outcome = await sendRaw(method, big);
        assert.equal(statusName(outcome.code), 'RESOURCE_EXHAUSTED', `${method}: ${outcome.details}`);
        assert.deepEqual(stored(), before, method);
      }
    });
  });

  describe('metadata', () => {
    it('metadata over maxMetadataBytes (16 KiB) is RESOURCE_EXHAUSTED naming the limit, before authentication', async () => {
      const scryptBefore = hub.hub.probe.authStats.scryptVerifications;
      const junk = { authorization: basicHeader({ id: 'M00-0000000000000000', password: 'p' }), 'x-junk': 'j'.repeat(20_000) };
      for (const method of METHODS) {
        const outcome = await sendRaw(method, Buffer.alloc(0), junk);
        assert.equal(statusName(outcome.code), 'RESOURCE_EXHAUSTED', `${method}: ${outcome.details}`);
        assert.match(outcome.details, /^metadata: .* exceed the limit of 16384 bytes/);
      }
      const withReason = await outcomeOf((o) =>
        client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: Metadata(junk) }),
      );
      assert.equal(withReason.reason, 'METADATA_TOO_LARGE');
      assert.equal(hub.hub.probe.authStats.scryptVerifications, scryptBefore, 'no scrypt work for an oversized call');
    });

    it('huge metadata (past HTTP/2 header limits) is refused and the hub keeps serving', async () => {
      const attempts = [
        Metadata({ 'x-junk': 'j'.repeat(200_000) }),
        Metadata({ authorization: 'Basic ' + 'A'.repeat(100_000) }),
        Metadata(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-h${i}`, 'v']))),
      ];
      for (const metadata of attempts) {
        const outcome = await outcomeOf((o) => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata }));
        assert.notEqual(outcome.code, Status.OK);
      }
      const after = await hub.client().listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(merchant) });
      assert.ok(Array.isArray(after.items));
    });
  });

  describe('property: random requests never crash the hub or store anything invalid', () => {
    const str = fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 20 }),
      fc.string({ unit: 'binary', maxLength: 300 }), // includes lone surrogates
      fc.string({ minLength: 120, maxLength: 260 }),
      fc.constantFrom('R00-0000000000000000', 'M11-1234567890123456', 'a\uFFFDb', '\u0000', 'é'.repeat(3000)),
    );
    const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    const offer = fc.option(
      fc.oneof(
        fc.record({ $case: fc.constant('discount' as const), value: fc.record({ percentOff: fc.nat({ max: 2 ** 32 - 1 }) }) }),
        fc.record({ $case: fc.constant('points' as const), value: fc.record({ balance: int64, earned: int64 }) }),
        fc.record({
          $case: fc.constant('voucher' as const),
          value: fc.record({ code: str, amountOff: int64, currency: fc.oneof(str, fc.constant('EUR')), minSpend: int64 }),
        }),
      ),
      { nil: undefined },
    );
    const info = fc.option(
      fc.record({
        key: str,
        title: str,
        body: str,
        validUntil: fc.option(fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }), { nil: undefined }),
        offer,
        data: fc.dictionary(str, str, { maxKeys: 40 }),
      }),
      { nil: undefined },
    );
    const receiverId = () => fc.oneof(str, fc.constant(receiver.id));
    const request = () =>
      fc.oneof(
        fc.record({ rpc: fc.constant('Register' as const), role: fc.integer({ min: -2, max: 4 }), displayName: str, regionCode: fc.oneof(str, fc.constant('11')), registrationToken: str }),
        fc.record({ rpc: fc.constant('PushSpecific' as const), receiverId: receiverId(), info, requestId: str }),
        fc.record({ rpc: fc.constant('PushPublic' as const), info, requestId: str }),
        fc.record({ rpc: fc.constant('Withdraw' as const), itemId: str, key: str, receiverId: receiverId(), requestId: str }),
        fc.record({ rpc: fc.constant('ListItems' as const), receiverId: receiverId(), audience: fc.integer({ min: -2, max: 5 }), pageSize: fc.nat({ max: 2 ** 32 - 1 }), pageToken: str }),
        fc.record({ rpc: fc.constant('Subscribe' as const), afterSequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
        fc.record({ rpc: fc.constant('PushStream' as const), ref: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), info, receiverId: receiverId(), requestId: str }),
      );

    async function call(req: GeneratedRequest): Promise<CallOutcome> {
      const m = basicAuth(merchant);
      switch (req.rpc) {
        case 'Register':
          return outcomeOf((o) => client.register({ role: req.role as Role, displayName: req.displayName, regionCode: req.regionCode, registrationToken: req.registrationToken }, o));
        case 'PushSpecific':
          return outcomeOf((o) => client.pushSpecific({ receiverId: req.receiverId, info: req.info, requestId: req.requestId }, { ...o, metadata: m }));
        case 'PushPublic':
          return outcomeOf((o) => client.pushPublic({ info: req.info, requestId: req.requestId }, { ...o, metadata: m }));
        case 'Withdraw':
          return outcomeOf((o) => client.withdraw({ itemId: req.itemId, key: req.key, receiverId: req.receiverId, requestId: req.requestId }, { ...o, metadata: m }));
        case 'ListItems':
          return outcomeOf((o) => client.listItems({ receiverId: req.receiverId, audience: req.audience as Audience, pageSize: req.pageSize, pageToken: req.pageToken }, { ...o, metadata: m }));
        case 'Subscribe':
          return outcomeOf(async (o) => {
            const abort = new AbortController();
            for await (const _ of client.subscribe({ afterSequence: req.afterSequence }, { ...o, metadata: basicAuth(receiver), signal: abort.signal })) break;
          });
        case 'PushStream': {
          const push: PushStreamRequest = { entries: [{ ref: req.ref, push: { $case: 'specific', value: { receiverId: req.receiverId, info: req.info, requestId: req.requestId } } }] };
          return outcomeOf(async (o) => {
            async function* one() {
              yield push;
            }
            for await (const response of client.pushStream(one(), { ...o, metadata: m })) {
              for (const result of response.results) {
                assert.equal(result.ref, req.ref);
                if (result.code !== Status.OK) throw new ClientError('/PushStream', result.code, result.message);
              }
            }
          });
        }
      }
    }

    type GeneratedRequest = ReturnType<typeof request> extends fc.Arbitrary<infer T> ? T : never;
    const WRITES = new Set(['PushSpecific', 'PushPublic', 'Withdraw', 'PushStream']);

    it('generated requests: a clear status, and something is stored exactly when the answer is OK', async () => {
      const usedRequestIds = new Set<string>();
      await fc.assert(
        fc.asyncProperty(request(), async (req) => {
          const before = stored();
          const outcome = await call(req);
          assert.ok(CLEAR_STATUSES.has(outcome.code), `${req.rpc}: ${statusName(outcome.code)} ${outcome.details}`);
          if (outcome.code !== Status.OK) assert.ok(outcome.details.length > 0, 'a failure explains itself');
          const after = stored();
          // A request_id this merchant already used replays the first answer and writes nothing.
          const requestId = 'requestId' in req ? req.requestId : '';
          const replayed = requestId !== '' && usedRequestIds.has(requestId);
          const wrote = WRITES.has(req.rpc) && outcome.code === Status.OK && !replayed;
          if (WRITES.has(req.rpc) && outcome.code === Status.OK && requestId !== '') usedRequestIds.add(requestId);
          const registered = req.rpc === 'Register' && outcome.code === Status.OK;
          assert.equal(after.head, before.head + (wrote ? 1 : 0), `${req.rpc} ${statusName(outcome.code)}`);
          assert.equal(after.accounts, before.accounts + (registered ? 1 : 0));
        }),
        { numRuns: 300 },
      );
    });

    it('random bytes to every RPC: a clear status, never INTERNAL, nothing stored unless OK', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...METHODS.filter((m) => m !== 'RotatePassword')),
          fc.uint8Array({ maxLength: 600 }),
          async (method, bytes) => {
            const before = stored();
            const outcome = await sendRaw(method, Buffer.from(bytes));
            assert.ok(CLEAR_STATUSES.has(outcome.code), `${method} ${Buffer.from(bytes).toString('hex')}: ${statusName(outcome.code)} ${outcome.details}`);
            const after = stored();
            if (outcome.code !== Status.OK) assert.deepEqual(after, before);
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
