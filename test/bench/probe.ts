// Bench-only probe: bytes allocated on the main thread's JS heap over a window, and which OS
// threads a process had at start. Preloaded into the hub and the baseline server
// (`node --import tsx --import test/bench/probe.ts …`, with BENCH_PROBE_DIR set), where SIGUSR2
// starts a window and the next SIGUSR2 ends it and writes `<BENCH_PROBE_DIR>/<pid>.json`;
// imported by the subscriber hosts, which call the meter directly.
//
// Allocation = heap growth over the window + what every GC in the window freed (v8.GCProfiler
// gives the used heap size before and after each collection). Unlike the inspector's sampling
// heap profiler, it costs nothing per allocation, so the CPU figures of the same window stay
// honest. It counts JS heap objects, not the off-heap backing stores of Buffers.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GCProfiler, getHeapStatistics } from 'node:v8';

export interface AllocationWindow {
  /** Bytes allocated on this thread's JS heap in the window. */
  bytes: number;
  /** Garbage collections in the window. */
  gcs: number;
}

export class AllocationMeter {
  private profiler: GCProfiler | undefined;
  private usedAtStart = 0;

  get running(): boolean {
    return this.profiler !== undefined;
  }

  start(): void {
    this.profiler = new GCProfiler();
    this.profiler.start();
    this.usedAtStart = getHeapStatistics().used_heap_size;
  }

  stop(): AllocationWindow {
    const used = getHeapStatistics().used_heap_size;
    const statistics = this.profiler?.stop()?.statistics ?? [];
    this.profiler = undefined;
    let freed = 0;
    for (const gc of statistics) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
    return { bytes: used - this.usedAtStart + freed, gcs: statistics.length };
  }
}

/** OS thread ids of this process now. */
export const threadIds = (): number[] => readdirSync('/proc/self/task').map(Number);

const dir = process.env.BENCH_PROBE_DIR;
if (dir && !process.send) {
  // Threads alive before the application starts: the main thread and V8's platform threads
  // (GC helpers, concurrent compiler); the commit worker and libuv's pool come later.
  const startupThreads = threadIds();
  const meter = new AllocationMeter();
  let windows = 0;
  const write = (result?: AllocationWindow) =>
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ pid: process.pid, windows, running: meter.running, startupThreads, result }));
  write();
  process.on('SIGUSR2', () => {
    if (meter.running) {
      windows++;
      write(meter.stop());
    } else {
      meter.start();
      write();
    }
  });
}
