import { baselineTarget } from './baseline.js';
import { pushhubTarget } from './pushhub.js';
import type { BenchTarget } from './types.js';

export const TARGETS: Record<string, BenchTarget> = { pushhub: pushhubTarget, baseline: baselineTarget };
