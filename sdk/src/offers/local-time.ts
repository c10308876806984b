/** The parts of an instant that time-of-day rules and visit counting need, in one time zone. */
export interface LocalTime {
  /** Days since 1970-01-01 in the time zone: two records on the same local date share it. */
  day: number;
  /** Minutes since local midnight, 0 to 1439. */
  minuteOfDay: number;
  /** Day of the week, 0 = Sunday to 6 = Saturday. */
  weekday: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/**
 * Every UTC offset in use is a multiple of 15 minutes and changes on a 15-minute boundary,
 * so one lookup per 15-minute bucket is exact and keeps Intl (slow) out of the hot loop.
 */
const BUCKET_MS = 15 * MINUTE_MS;
/** Bounds the memo in long-running processes (about 3 years of buckets). */
const MAX_CACHED_BUCKETS = 100_000;

/** Whether `timeZone` is an IANA time zone name that this runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns a function from epoch milliseconds to local day, minute of day and weekday in
 * `timeZone` (an IANA name such as "Europe/Berlin"; daylight saving is followed).
 */
export function createLocalClock(timeZone: string): (ms: number) => LocalTime {
  const offsetOf = timeZone === 'UTC' ? () => 0 : createOffsetLookup(timeZone);
  return (ms) => {
    const local = ms + offsetOf(ms);
    const day = Math.floor(local / DAY_MS);
    const minuteOfDay = Math.floor((local - day * DAY_MS) / MINUTE_MS);
    // 1970-01-01 was a Thursday (4).
    const weekday = (((day + 4) % 7) + 7) % 7;
    return { day, minuteOfDay, weekday };
  };
}

/**
 * Returns a function from epoch milliseconds to the UTC offset in `timeZone` at that instant,
 * in ms (e.g. 7 200 000 for Europe/Berlin in summer).
 */
export function createOffsetOf(timeZone: string): (ms: number) => number {
  return timeZone === 'UTC' ? () => 0 : createOffsetLookup(timeZone);
}

function createOffsetLookup(timeZone: string): (ms: number) => number {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  });
  const cache = new Map<number, number>();
  return (ms) => {
    const bucket = Math.floor(ms / BUCKET_MS);
    let offset = cache.get(bucket);
    if (offset === undefined) {
      const at = bucket * BUCKET_MS;
      const parts: Record<string, number> = {};
      for (const part of format.formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
      const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!);
      offset = asUtc - at;
      if (cache.size >= MAX_CACHED_BUCKETS) cache.clear();
      cache.set(bucket, offset);
    }
    return offset;
  };
}
