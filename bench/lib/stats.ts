/** Small statistics for benchmark figures. */

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of an empty list");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Nearest-rank percentile of an ascending sorted array: the smallest sample
 * that at least `p` percent of the samples do not exceed.
 */
export function percentile(sortedAscending: Float64Array, p: number): number {
  const n = sortedAscending.length;
  if (n === 0) throw new RangeError("percentile of an empty list");
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sortedAscending[rank - 1]!;
}

/**
 * Records one duration per operation, measured with `process.hrtime.bigint()`,
 * and reduces them to latency percentiles and a rate.
 */
export class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  /** Records the time since `startNs` (from `process.hrtime.bigint()`). */
  record(startNs: bigint): void {
    this.#samples[this.#count++] = Number(process.hrtime.bigint() - startNs) / 1_000;
  }

  /** p50 and p99 in microseconds, and operations per second over `wallNs`. */
  summary(wallNs: bigint): { p50Us: number; p99Us: number; opsPerSec: number } {
    const sorted = this.#samples.subarray(0, this.#count).sort();
    return {
      p50Us: percentile(sorted, 50),
      p99Us: percentile(sorted, 99),
      opsPerSec: this.#count / (Number(wallNs) / 1e9),
    };
  }
}

/** Operations per second for `ops` operations that took from `startNs` until now. */
export function opsPerSecondSince(ops: number, startNs: bigint): number {
  return ops / (Number(process.hrtime.bigint() - startNs) / 1e9);
}
