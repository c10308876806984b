import { createHash } from 'node:crypto';
import type { ServiceInfo } from '../types.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

/**
 * A canonical form of the content of an offer: every field in a fixed order, integers as
 * strings (as they were when they were bigints, so fingerprints stay the same), validUntil
 * as epoch milliseconds, data entries sorted. Two infos with equal fingerprints show the same thing.
 */
function canonical(info: ServiceInfo): string {
  const offer = info.offer;
  const offerPart =
    offer === undefined
      ? ['none']
      : offer.$case === 'discount'
        ? ['discount', offer.value.percentOff]
        : offer.$case === 'points'
          ? ['points', String(offer.value.balance), String(offer.value.earned)]
          : ['voucher', offer.value.code, String(offer.value.amountOff), offer.value.currency, String(offer.value.minSpend)];
  const data = Object.entries(info.data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([info.key, info.title, info.body, info.validUntil === '' ? null : Date.parse(info.validUntil), offerPart, data]);
}

/** A short hash of an offer's content (43 characters, base64url). */
export function offerFingerprint(info: ServiceInfo): string {
  return sha256(canonical(info));
}

/**
 * The request id of a push that moves a receiver's offer from the item the hub holds
 * (`baseItemId`, '' for none) to new content. Content alone is not enough: within the hub's
 * 24 h idempotency window, going A -> B -> A would replay the first push of A and deliver
 * nothing. Including the item being replaced makes each transition its own request, while a
 * repeat of the same transition (a crash, a concurrent run) maps to the same id.
 */
export function pushRequestId(receiverId: string, info: ServiceInfo, baseItemId: string): string {
  return `offer-push-${sha256(JSON.stringify([receiverId, info.key, offerFingerprint(info), baseItemId]))}`;
}

/** The request id of withdrawing one item: item ids are unique, so the id alone suffices. */
export function withdrawRequestId(itemId: string): string {
  return `offer-withdraw-${sha256(itemId)}`;
}
