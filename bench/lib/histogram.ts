/**
 * Latency statistics. Exact percentiles for small sample sets (micro
 * benchmarks), and a log-bucketed histogram for millions of samples (load runs):
 * fixed memory, mergeable, every percentile within RELATIVE_ERROR of the truth.
 */

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export const EMPTY_SUMMARY: Summary = Object.freeze({ count: 0, min: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN });

/**
 * Nearest-rank percentile of ascending `sorted` (p in 0..100): the smallest value
 * with at least p % of the samples at or below it. NaN for no samples.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[n - 1];
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1];
}

/** Summary of unsorted samples (not modified). */
export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) return EMPTY_SUMMARY;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    count: n,
    min: sorted[0],
    mean: sum / n,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[n - 1],
  };
}

const RELATIVE_ERROR = 0.01;
const LOG_BASE = Math.log1p(RELATIVE_ERROR);
/** Values are in ms; bucket 0 holds everything <= MIN_VALUE (1 µs). */
const MIN_VALUE = 0.001;
/** 1 µs .. ~1 day at 1 %: about 2,500 buckets. */
const BUCKETS = Math.ceil(Math.log(86_400_000 / MIN_VALUE) / LOG_BASE) + 2;

/**
 * Histogram of non-negative values (ms). Bucket i > 0 holds values in
 * (MIN·(1+r)^(i-1), MIN·(1+r)^i]; a percentile reports its bucket's upper bound,
 * clamped to the exact min and max, so it is never below the true value and at
 * most 1 % above it.
 */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  static readonly relativeError = RELATIVE_ERROR;

  private static bucketOf(v: number): number {
    if (!(v > MIN_VALUE)) return 0;
    const i = Math.ceil(Math.log(v / MIN_VALUE) / LOG_BASE);
    return i >= BUCKETS ? BUCKETS - 1 : i;
  }

  private static upperBound(i: number): number {
    return MIN_VALUE * Math.exp(i * LOG_BASE);
  }

  record(v: number): void {
    if (!Number.isFinite(v)) return;
    if (v < 0) v = 0; // clocks of one process; a negative latency is rounding
    this.counts[Histogram.bucketOf(v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  merge(other: Histogram): this {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    return this;
  }

  percentile(p: number): number {
    if (this.count === 0) return NaN;
    if (p <= 0) return this.min;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, Histogram.upperBound(i)));
    }
    return this.max;
  }

  summary(): Summary {
    if (this.count === 0) return EMPTY_SUMMARY;
    return {
      count: this.count,
      min: this.min,
      mean: this.sum / this.count,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: this.max,
    };
  }

  /** Plain data for IPC between load-generator processes. */
  toJSON(): { counts: Array<[number, number]>; count: number; sum: number; min: number; max: number } {
    const counts: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) counts.push([i, this.counts[i]]);
    return { counts, count: this.count, sum: this.sum, min: this.min, max: this.max };
  }

  static fromJSON(j: ReturnType<Histogram['toJSON']>): Histogram {
    const h = new Histogram();
    for (const [i, c] of j.counts) h.counts[i] = c;
    h.count = j.count;
    h.sum = j.sum;
    h.min = j.min ?? Infinity;
    h.max = j.max ?? -Infinity;
    return h;
  }
}
