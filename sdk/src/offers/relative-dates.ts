import { createOffsetOf } from './local-time.js';
import type { ConsumptionRecord } from './records.js';

const DAY_MS = 86_400_000;

/**
 * Returns a function that moves a time by whole calendar days in `timeZone`, so that the day
 * of `from` becomes the day of `to`, keeping the local wall-clock time. For replaying old
 * example or test records as if they were recent.
 *
 * Whole UTC days would not do: across a daylight-saving change a 07:55 purchase would become
 * 06:55 or 08:55 local time and fall out of (or into) a time-of-day multiplier. A wall-clock
 * time that does not exist on the target day (the hour skipped in spring) moves forward by
 * the length of the gap; an ambiguous one (the hour repeated in autumn) takes the earlier.
 */
export function createDayShift(from: Date, to: Date, timeZone: string): (time: Date) => Date {
  const offsetOf = createOffsetOf(timeZone);
  const localDay = (ms: number) => Math.floor((ms + offsetOf(ms)) / DAY_MS);
  const days = localDay(to.getTime()) - localDay(from.getTime());
  return (time) => {
    const ms = time.getTime();
    // The same wall-clock reading, `days` later, read as if it were UTC.
    const wall = ms + offsetOf(ms) + days * DAY_MS;
    // Back to an instant: the offset at the target depends on the target itself, so take the
    // offset of a first guess, then check it; at most one correction is ever needed.
    let guess = wall - offsetOf(wall - offsetOf(ms));
    if (guess + offsetOf(guess) !== wall) {
      const other = wall - offsetOf(guess);
      // Both guesses fail only inside a spring-forward gap: keep the later (after the gap).
      guess = other + offsetOf(other) === wall ? other : Math.max(guess, other);
    }
    // Of two instants with this wall-clock time (autumn), the earlier one.
    const earlier = guess - DAY_MS / 24;
    if (earlier + offsetOf(earlier) === wall) guess = earlier;
    return new Date(guess);
  };
}

/**
 * Moves every record by whole calendar days in `timeZone` (the rules' time zone) so that
 * `recordsNow`, the time the records were written for, falls on the day of `now`; each
 * record keeps its local time of day. See {@link createDayShift}.
 */
export function shiftRecordsToDay<R extends ConsumptionRecord>(records: Iterable<R>, recordsNow: Date, now: Date, timeZone: string): R[] {
  const shift = createDayShift(recordsNow, now, timeZone);
  return Array.from(records, (record) => ({ ...record, time: shift(record.time) }));
}
