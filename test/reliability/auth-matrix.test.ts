import assert from 'node:assert/strict';
import { Metadata, Status } from 'nice-grpc';
import { type PushStreamRequest, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, TestHub, basicAuth } from '../support/hub.js';
import { type CallOutcome, outcomeOf, statusName, unknownId } from './support.js';

type CredentialKind = 'none' | 'malformed header' | 'unknown id' | 'wrong password' | 'merchant' | 'receiver';
const CREDENTIAL_KINDS: CredentialKind[] = ['none', 'malformed header', 'unknown id', 'wrong password', 'merchant', 'receiver'];

/** What every cell needs: a merchant, a receiver and an item of that merchant for that receiver. */
interface Cell {
  client: HubClient;
  merchant: Credentials;
  receiver: Credentials;
  itemId: string;
  metadata: Metadata;
}

type Rpc = (cell: Cell, options: { metadata: Metadata; onTrailer(t: Metadata): void }) => Promise<unknown>;

const info = { key: '', title: 'matrix', body: '', data: {}, validUntil: undefined, offer: undefined };

async function* once(request: PushStreamRequest) {
  yield request;
}

/** One valid request per RPC, so the only thing that can fail is the credentials. */
const RPCS: Record<string, Rpc> = {
  Register: (c, o) => c.client.register({ role: Role.ROLE_RECEIVER, displayName: '', regionCode: '', registrationToken: '' }, o),
  PushSpecific: (c, o) => c.client.pushSpecific({ receiverId: c.receiver.id, info, requestId: '' }, o),
  PushPublic: (c, o) => c.client.pushPublic({ info, requestId: '' }, o),
  Withdraw: (c, o) => c.client.withdraw({ itemId: c.itemId, key: '', receiverId: '', requestId: '' }, o),
  PushStream: async (c, o) => {
    const request: PushStreamRequest = { entries: [{ ref: 1n, push: { $case: 'public', value: { info, requestId: '' } } }] };
    for await (const response of c.client.pushStream(once(request), o)) {
      for (const result of response.results) assert.equal(result.code, Status.OK, result.message);
    }
  },
  ListItems: (c, o) => c.client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, o),
  Subscribe: async (c, o) => {
    const abort = new AbortController();
    try {
      for await (const event of c.client.subscribe({ afterSequence: 0n }, { ...o, signal: abort.signal })) {
        if (event.events.some((e) => e.event?.$case === 'caughtUp')) return;
      }
    } finally {
      abort.abort();
    }
  },
  RotatePassword: (c, o) => c.client.rotatePassword({}, o),
};

const MERCHANT_ONLY = new Set(['PushSpecific', 'PushPublic', 'Withdraw', 'PushStream', 'ListItems']);

/** The matrix as specified: the status each RPC must give each kind of caller. */
function expected(rpc: string, kind: CredentialKind): Status {
  if (rpc === 'Register') return Status.OK; // needs no credentials and ignores any sent
  if (kind === 'none' || kind === 'malformed header' || kind === 'unknown id' || kind === 'wrong password') {
    return Status.UNAUTHENTICATED;
  }
  if (MERCHANT_ONLY.has(rpc)) return kind === 'merchant' ? Status.OK : Status.PERMISSION_DENIED;
  if (rpc === 'Subscribe') return kind === 'receiver' ? Status.OK : Status.PERMISSION_DENIED;
  return Status.OK; // RotatePassword: any account
}

describe('auth matrix: every RPC x every kind of caller', function () {
  let hub: TestHub;

  before(async () => {
    hub = await TestHub.start();
  });
  after(async () => {
    await hub.stop();
  });

  /** Fresh accounts per cell: RotatePassword and failed logins must not leak into other cells. */
  async function cell(kind: CredentialKind): Promise<Cell> {
    const client = hub.client();
    const merchant = await hub.register('merchant');
    const receiver = await hub.register('receiver');
    const pushed = await client.pushSpecific({ receiverId: receiver.id, info, requestId: '' }, { metadata: basicAuth(merchant) });
    const metadata = (() => {
      switch (kind) {
        case 'none':
          return Metadata();
        case 'malformed header':
          return Metadata({ authorization: `Bearer ${merchant.password}` });
        case 'unknown id':
          return basicAuth({ id: unknownId('M'), password: merchant.password });
        case 'wrong password':
          return basicAuth({ id: merchant.id, password: `${merchant.password}x` });
        case 'merchant':
          return basicAuth(merchant);
        case 'receiver':
          return basicAuth(receiver);
      }
    })();
    return { client, merchant, receiver, itemId: pushed.itemId, metadata };
  }

  for (const [rpc, run] of Object.entries(RPCS)) {
    for (const kind of CREDENTIAL_KINDS) {
      const want = expected(rpc, kind);
      it(`${rpc} with ${kind} gives ${statusName(want)}`, async () => {
        const c = await cell(kind);
        const outcome: CallOutcome = await outcomeOf((o) => run(c, { ...o, metadata: c.metadata }));
        assert.equal(statusName(outcome.code), statusName(want), outcome.details);
        if (want === Status.UNAUTHENTICATED) assert.equal(outcome.reason, 'UNAUTHENTICATED');
        if (want === Status.PERMISSION_DENIED) {
          assert.equal(outcome.reason, 'PERMISSION_DENIED');
          assert.match(outcome.details, new RegExp(`${rpc} needs a`));
        }
      });
    }
  }

  it('malformed authorization headers of every shape give UNAUTHENTICATED', async () => {
    const c = await cell('merchant');
    const id = c.merchant.id;
    const headers = [
      '',
      'Basic',
      'Basic ',
      // The scheme name is case-insensitive (RFC 7617), but it needs its space.
      'Basic' + Buffer.from(`${id}:${c.merchant.password}`).toString('base64'),
      'Basic !!!!',
      'Basic ' + Buffer.from('no-colon-here').toString('base64'),
      'Basic ' + Buffer.from(`${id}:`).toString('base64'),
      'Basic ' + Buffer.from(`:${c.merchant.password}`).toString('base64'),
      'Basic ' + 'A'.repeat(4000),
      'Basic ' + Buffer.from([0xff, 0xfe, 0x3a, 0xff]).toString('base64'),
      'Digest username="x"',
    ];
    for (const header of headers) {
      const outcome = await outcomeOf((o) => c.client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: Metadata({ authorization: header }) }));
      assert.equal(statusName(outcome.code), 'UNAUTHENTICATED', `header ${JSON.stringify(header.slice(0, 40))}: ${outcome.details}`);
    }
  });

  it('unknown id and wrong password give the same message (no account oracle)', async () => {
    const c = await cell('merchant');
    const unknown = await outcomeOf((o) => c.client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: basicAuth({ id: unknownId('M'), password: 'x' }) }));
    const wrong = await outcomeOf((o) => c.client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: basicAuth({ id: c.merchant.id, password: 'x' }) }));
    assert.equal(unknown.code, Status.UNAUTHENTICATED);
    assert.deepEqual(unknown, wrong);
  });

  it('a rejected push stores nothing', async () => {
    const c = await cell('merchant');
    for (const metadata of [Metadata(), basicAuth({ id: c.merchant.id, password: 'wrong' }), basicAuth(c.receiver)]) {
      await outcomeOf((o) => c.client.pushSpecific({ receiverId: c.receiver.id, info: { ...info, title: 'intruder' }, requestId: '' }, { ...o, metadata }));
    }
    const listed = await c.client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(c.merchant) });
    assert.deepEqual(listed.items.map((i) => i.itemId), [c.itemId]);
  });
});
