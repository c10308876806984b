import type { Item, SubscribeEvent, SubscribeResponse } from '../../sdk/src/gen/pushhub/v1/pushhub.js';

/** The events of a Subscribe stream one by one (each response carries a batch of them). */
export async function* eventsOf(stream: AsyncIterable<SubscribeResponse>): AsyncGenerator<SubscribeEvent> {
  for await (const response of stream) yield* response.events;
}

/**
 * What a receiver holds after applying a stream of events the way the SDK's store does:
 * an item replaces the live one with the same (merchant, audience, key); a withdrawal
 * removes the item by id.
 */
export class ModelReceiver {
  readonly items = new Map<string, Item>();
  cursor = 0n;

  clone(): ModelReceiver {
    const copy = new ModelReceiver();
    for (const [id, item] of this.items) copy.items.set(id, item);
    copy.cursor = this.cursor;
    return copy;
  }

  /** Ids of the items still valid at nowMs (a receiver drops expired items itself). */
  liveIds(nowMs: number, merchantId?: string): string[] {
    return [...this.items.values()]
      .filter((i) => i.info!.validUntil!.getTime() > nowMs && (merchantId === undefined || i.merchantId === merchantId))
      .map((i) => i.itemId)
      .sort();
  }

  apply(event: SubscribeEvent): void {
    const e = event.event;
    if (e?.$case === 'item') {
      const item = e.value;
      if (item.sequence <= this.cursor) return;
      if (item.info!.key !== '') {
        for (const [id, held] of this.items) {
          if (held.merchantId === item.merchantId && held.audience === item.audience && held.info!.key === item.info!.key) {
            this.items.delete(id);
          }
        }
      }
      this.items.set(item.itemId, item);
      this.cursor = item.sequence;
    } else if (e?.$case === 'withdrawal') {
      const w = e.value;
      if (w.sequence <= this.cursor) return;
      this.items.delete(w.itemId);
      // As the SDK store does: an older item with the withdrawn one's key is gone too.
      if (w.key !== '') {
        for (const [id, held] of this.items) {
          if (held.merchantId === w.merchantId && held.audience === w.audience && held.info!.key === w.key && held.sequence < w.sequence) {
            this.items.delete(id);
          }
        }
      }
      this.cursor = w.sequence;
    } else if (e?.$case === 'caughtUp') {
      if (e.value.sequence > this.cursor) this.cursor = e.value.sequence;
    }
  }
}
