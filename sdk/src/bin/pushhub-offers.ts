#!/usr/bin/env node
/**
 * pushhub-offers: syncs offers computed from a consumption-records file to the hub.
 *
 * ```sh
 * PUSHHUB_MERCHANT_ID=M11-... PUSHHUB_MERCHANT_PASSWORD=... \
 *   pushhub-offers --address 127.0.0.1:50051 --rules rules.json --records records.csv
 * ```
 *
 * @module
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { MerchantClient } from '../merchant.js';
import { sdkVersion } from './version.js';
import {
  type BulkOfferTarget,
  type ConsumptionRecord,
  type OfferPlan,
  type RecordFileFormat,
  type SyncSummary,
  type ValidRules,
  RulesValidationError,
  createDayShift,
  readRecordFile,
  syncOffers,
  validateRules,
} from '../offers/index.js';

const USAGE = `Usage: pushhub-offers --rules FILE --records FILE [options]

Computes every receiver's offers from consumption records and syncs them to the hub:
pushes new and changed offers, withdraws offers no longer earned, sends nothing for the rest.
Only receivers that appear in the records file are touched.

Options:
  --rules FILE          offer rules (JSON)
  --records FILE        consumption records: CSV with a header row, or JSON lines
  --format csv|jsonl    records format (default: from the file extension)
  --address HOST:PORT   the hub (default: $PUSHHUB_ADDRESS or 127.0.0.1:50051)
  --merchant-id ID      merchant id (default: $PUSHHUB_MERCHANT_ID)
  --password-file FILE  file holding the merchant password (default: $PUSHHUB_MERCHANT_PASSWORD)
  --ca FILE             CA certificate (PEM) when the hub serves TLS
  --now ISO-TIME        compute offers as of this time (default: now)
  --records-now ISO-TIME
                        the time the records were written for: move every record by
                        whole calendar days in the rules' time zone (keeping its local
                        time of day) so that this time falls on the day of --now; for
                        replaying example or test records
  --window N            pushes in flight on the push stream (default 512)
  --skip-invalid        skip invalid record lines (counted) instead of stopping at the first
  --dry-run             compute and compare only; send nothing (without credentials:
                        offline, as if the hub held no offers)
  --progress            show a progress bar on stderr even when it is not a terminal
  --no-progress         never show a progress bar
  --verbose             list every change (push or withdraw) on stdout
  --json                print the summary as JSON
  --version             print the version and exit
  -h, --help            this help

Voucher codes are keyed with $PUSHHUB_OFFERS_CODE_SECRET when it is set.
Exit status: 0 done, 1 some changes were rejected by the hub, 2 bad input or usage.`;

/** Where main writes, and what it reads from its environment (a test passes its own). */
export interface CliIo {
  /** Summary output. */
  stdout: NodeJS.WritableStream;
  /** Progress bar and errors. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Environment variables. */
  env: NodeJS.ProcessEnv;
}

/** The target of an offline dry run: holds nothing, accepts nothing. */
const OFFLINE: BulkOfferTarget = {
  async *listItems() {},
  openPushStream() {
    throw new Error('an offline dry run sends nothing');
  },
};

/** Raised for a problem with the command's input: printed without a stack, exit status 2. */
class UsageError extends Error {}

/**
 * Runs the command with `argv` (without node and the script) and returns its exit status.
 * Exported so tests and other tools can run it in process.
 */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  try {
    return await run(argv, io);
  } catch (error) {
    if (error instanceof UsageError || error instanceof RulesValidationError) {
      io.stderr.write(`pushhub-offers: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`pushhub-offers: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

async function run(argv: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rules: { type: 'string' },
        records: { type: 'string' },
        format: { type: 'string' },
        address: { type: 'string' },
        'merchant-id': { type: 'string' },
        'password-file': { type: 'string' },
        ca: { type: 'string' },
        now: { type: 'string' },
        'records-now': { type: 'string' },
        window: { type: 'string' },
        'skip-invalid': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        progress: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    io.stdout.write(`pushhub-offers ${sdkVersion()}\n`);
    return 0;
  }
  if (!values.rules || !values.records) throw new UsageError(`--rules and --records are required\n\n${USAGE}`);
  const format = values.format as RecordFileFormat | undefined;
  if (format !== undefined && format !== 'csv' && format !== 'jsonl') throw new UsageError('--format must be csv or jsonl');
  const now = values.now === undefined ? new Date() : new Date(values.now);
  if (Number.isNaN(now.getTime())) throw new UsageError(`--now: not a time: ${values.now}`);
  const recordsNow = values['records-now'] === undefined ? undefined : new Date(values['records-now']);
  if (recordsNow && Number.isNaN(recordsNow.getTime())) throw new UsageError(`--records-now: not a time: ${values['records-now']}`);
  const window = values.window === undefined ? undefined : Number(values.window);
  if (window !== undefined && !(Number.isInteger(window) && window >= 1)) throw new UsageError('--window must be a positive integer');
  const address = values.address ?? io.env.PUSHHUB_ADDRESS ?? '127.0.0.1:50051';
  const merchantId = values['merchant-id'] ?? io.env.PUSHHUB_MERCHANT_ID;
  const password = values['password-file'] !== undefined ? readText(values['password-file'], '--password-file').trim() : io.env.PUSHHUB_MERCHANT_PASSWORD;
  if (!values['dry-run'] && (!merchantId || !password)) {
    throw new UsageError('merchant credentials needed: --merchant-id (or $PUSHHUB_MERCHANT_ID) and --password-file (or $PUSHHUB_MERCHANT_PASSWORD)');
  }

  const rules = loadRules(values.rules);
  const showProgress = !values['no-progress'] && (values.progress === true || io.stderr.isTTY === true);
  const bar = showProgress ? new ProgressBar(io.stderr) : undefined;

  const shift = recordsNow && createDayShift(recordsNow, now, rules.timeZone);
  const { byReceiver, records, invalid, newest } = await loadRecords(values.records, format, values['skip-invalid'] === true, bar, shift);
  // A dry run without credentials plans offline, as if the hub held no offers yet.
  const merchant =
    merchantId && password
      ? new MerchantClient({
          address,
          id: merchantId,
          password,
          ...(values.ca ? { tls: { ca: Buffer.from(readText(values.ca, '--ca')) } } : {}),
        })
      : undefined;
  let summary: SyncSummary;
  try {
    summary = await syncOffers(merchant ?? OFFLINE, byReceiver, rules, {
      now,
      window,
      dryRun: values['dry-run'] === true,
      codeSecret: io.env.PUSHHUB_OFFERS_CODE_SECRET || undefined,
      onPlan: values.verbose ? (plan) => io.stdout.write(describePlan(plan)) : undefined,
      onProgress:
        bar &&
        ((p) =>
          p.phase === 'listing'
            ? bar.update('listing', p.done, 0, 'offers held by the hub')
            : bar.update('syncing', p.done, p.total, `receivers  pushed ${p.summary.pushed}  withdrawn ${p.summary.withdrawn}`)),
    });
  } finally {
    bar?.done();
    merchant?.close();
  }

  const report = { ...summary, records, invalidLines: invalid, dryRun: values['dry-run'] === true };
  if (values.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    const verb = report.dryRun ? 'would push' : 'pushed';
    io.stdout.write(
      `${verb} ${summary.pushed}, unchanged ${summary.unchanged}, ${report.dryRun ? 'would withdraw' : 'withdrawn'} ${summary.withdrawn}` +
        `${summary.ended > 0 ? `, skipped ${summary.ended} already ended` : ''}` +
        `${summary.failed > 0 ? `, failed ${summary.failed}` : ''} (${summary.receivers} receivers, ${records} records` +
        `${invalid > 0 ? `, ${invalid} invalid lines skipped` : ''})\n`,
    );
    for (const e of summary.errors) io.stderr.write(`  rejected: ${e.receiverId} ${e.key}: ${e.message}\n`);
  }
  if (summary.ended > 0) io.stderr.write(endedHint(summary.ended, now, newest, recordsNow !== undefined));
  return summary.failed > 0 ? 1 : 0;
}

/**
 * Why offers were skipped as ended, and what to do: an offer's validity follows from the
 * records' times, so a file of old records (such as an example) earns only ended offers.
 */
function endedHint(ended: number, now: Date, newest: Date | undefined, shifted: boolean): string {
  const offers = ended === 1 ? '1 offer was' : `${ended} offers were`;
  const records = newest ? ` The newest record is from ${newest.toISOString()}.` : '';
  const advice = shifted
    ? ''
    : ' To replay old example or test records as if they were recent, pass --records-now with the time they were written for.';
  return (
    `pushhub-offers: ${offers} not sent because ${ended === 1 ? 'it had' : 'they had'} already ended by ${now.toISOString()}: ` +
    `an offer's validity follows from the times of the records that earned it.${records}${advice}\n`
  );
}

/** One line per change: what the customer will see. */
function describePlan(plan: OfferPlan): string {
  return plan.changes
    .map((change) => {
      if (change.type === 'withdraw') return `withdraw ${change.receiverId} ${change.key}\n`;
      const { info } = change;
      const offer = info.offer ? ` ${JSON.stringify(info.offer.value)}` : '';
      return `push ${change.receiverId} ${info.key} "${info.title}"${offer} until ${info.validUntil}\n`;
    })
    .join('');
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${what}: cannot read ${path}: ${(error as Error).message}`);
  }
}

function loadRules(path: string): ValidRules {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path, '--rules'));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--rules: ${path} is not JSON: ${(error as Error).message}`);
  }
  try {
    return validateRules(parsed);
  } catch (error) {
    if (error instanceof RulesValidationError) throw new UsageError(`${path}: ${error.message}`);
    throw error;
  }
}

async function loadRecords(
  path: string,
  format: RecordFileFormat | undefined,
  skipInvalid: boolean,
  bar: ProgressBar | undefined,
  shift: ((time: Date) => Date) | undefined,
) {
  let size = 0;
  if (bar) {
    const { statSync } = await import('node:fs');
    size = statSync(path).size;
  }
  const byReceiver = new Map<string, ConsumptionRecord[]>();
  let records = 0;
  let invalid = 0;
  let newest: Date | undefined;
  try {
    for await (const line of readRecordFile(path, { format, onBytes: bar && ((bytes) => bar.update('reading', bytes, size, 'bytes')) })) {
      if ('error' in line) {
        if (!skipInvalid) throw new UsageError(`${path}:${line.line}: ${line.error} (use --skip-invalid to skip such lines)`);
        invalid++;
        continue;
      }
      records++;
      const record = shift ? { ...line.record, time: shift(line.record.time) } : line.record;
      if (!newest || record.time > newest) newest = record.time;
      const list = byReceiver.get(record.receiverId);
      if (list) list.push(record);
      else byReceiver.set(record.receiverId, [record]);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
  return { byReceiver, records, invalid, newest };
}

/** A one-line progress bar, redrawn at most every 100 ms. */
class ProgressBar {
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly out: NodeJS.WritableStream) {}

  update(phase: string, done: number, total: number, unit: string): void {
    const now = Date.now();
    if (now - this.lastDraw < 100 && (total === 0 || done < total)) return;
    this.lastDraw = now;
    if (total === 0) {
      // Unknown total: a counter instead of a bar.
      this.out.write(`\r${phase.padEnd(8)} ${done} ${unit}\u001b[K`);
      this.drawn = true;
      return;
    }
    const fraction = Math.min(1, done / total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const percent = String(Math.floor(fraction * 100)).padStart(3);
    this.out.write(`\r${phase.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${done}/${total} ${unit}\u001b[K`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** Run when executed directly (also through the npm bin symlink), not when imported. */
const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
