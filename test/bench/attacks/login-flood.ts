import { Status } from 'nice-grpc';
import { type CallOutcome, type SourceClient, unknownId } from '../../reliability/support.js';

export interface LoginFlood {
  /** Every attacking call's outcome, once stopped (or out of calls). */
  done: Promise<CallOutcome[]>;
  stop(): void;
}

/**
 * Wrong passwords for unknown ids (each a full decoy scrypt on the hub) from every client's
 * source address, `concurrencyPerSource` calls in flight per address, until stopped, the
 * hub is gone, or `maxCallsPerSource` calls per address were made. The attacker of issue 16
 * (What we saw, 7): it never backs off, whatever the answer.
 */
export function floodLogins(clients: SourceClient[], options: { concurrencyPerSource: number; maxCallsPerSource: number }): LoginFlood {
  let running = true;
  const outcomes: CallOutcome[] = [];
  const done = Promise.all(
    clients.map(async (client) => {
      let calls = 0;
      await Promise.all(
        Array.from({ length: options.concurrencyPerSource }, async () => {
          while (running && calls++ < options.maxCallsPerSource) {
            const outcome = await client.listItems({ id: unknownId('M'), password: 'guess' });
            outcomes.push(outcome);
            if (outcome.code === Status.UNAVAILABLE) return;
          }
        }),
      );
    }),
  ).then(() => outcomes);
  return {
    done,
    stop: () => {
      running = false;
    },
  };
}
