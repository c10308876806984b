import assert from 'node:assert/strict';
import type { Metadata } from 'nice-grpc';
import { type Credentials, basicAuth } from '../support/hub.js';

/** The reason trailer of the last call made with `as()` options. */
let lastReason = '';
/** Call options with these credentials that record the reason trailer. */
export const as = (c: Credentials) => ({ metadata: basicAuth(c), onTrailer: (t: Metadata) => void (lastReason = String(t.get('pushhub-reason') ?? '')) });

/** The status code and stable reason of a failed call. */
export async function refusal(call: Promise<unknown>): Promise<{ code: number; reason: string }> {
  try {
    await call;
  } catch (error) {
    return { code: (error as { code: number }).code, reason: lastReason };
  }
  assert.fail('the call succeeded');
}
