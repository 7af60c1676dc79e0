/**
 * A set of integers stored as sorted, disjoint, non-adjacent closed ranges
 * [lo, hi]. Sequence numbers arrive mostly in order, so a receiver that saw
 * 1..100000 holds one range: O(1) memory and O(1) appends; a gap costs one
 * range until it is filled.
 */
export class IntervalSet {
  private readonly los: number[] = [];
  private readonly his: number[] = [];
  private count = 0;

  /** Number of integers in the set. */
  get size(): number {
    return this.count;
  }

  /** Number of disjoint ranges (1 for a gapless stream). */
  get rangeCount(): number {
    return this.los.length;
  }

  get min(): number | undefined {
    return this.los[0];
  }

  get max(): number | undefined {
    return this.his.length ? this.his[this.his.length - 1] : undefined;
  }

  ranges(): Array<[number, number]> {
    return this.los.map((lo, i) => [lo, this.his[i]]);
  }

  /** Index of the last range with lo <= v, or -1. */
  private find(v: number): number {
    let a = 0;
    let b = this.los.length - 1;
    let found = -1;
    while (a <= b) {
      const m = (a + b) >> 1;
      if (this.los[m] <= v) {
        found = m;
        a = m + 1;
      } else b = m - 1;
    }
    return found;
  }

  has(v: number): boolean {
    const i = this.find(v);
    return i >= 0 && v <= this.his[i];
  }

  /** Adds v; false if it was already there. */
  add(v: number): boolean {
    const n = this.los.length;
    // Fast paths: the stream goes on in order, or jumps ahead.
    if (n === 0 || v > this.his[n - 1] + 1) {
      this.los.push(v);
      this.his.push(v);
      this.count++;
      return true;
    }
    if (v === this.his[n - 1] + 1) {
      this.his[n - 1] = v;
      this.count++;
      return true;
    }
    const i = this.find(v);
    if (i >= 0 && v <= this.his[i]) return false;
    const joinsLeft = i >= 0 && this.his[i] + 1 === v;
    const joinsRight = i + 1 < n && this.los[i + 1] === v + 1;
    if (joinsLeft && joinsRight) {
      this.his[i] = this.his[i + 1];
      this.los.splice(i + 1, 1);
      this.his.splice(i + 1, 1);
    } else if (joinsLeft) this.his[i] = v;
    else if (joinsRight) this.los[i + 1] = v;
    else {
      this.los.splice(i + 1, 0, v);
      this.his.splice(i + 1, 0, v);
    }
    this.count++;
    return true;
  }

  /** How many members are greater than `after`. */
  countAbove(after: number): number {
    let total = 0;
    for (let i = this.los.length - 1; i >= 0; i--) {
      if (this.his[i] <= after) break;
      total += this.his[i] - Math.max(this.los[i], after + 1) + 1;
    }
    return total;
  }

  /** |this ∩ other ∩ (after, ∞)|, by a merge of both range lists. */
  intersectionSize(other: IntervalSet, after = -Infinity): number {
    let i = 0;
    let j = 0;
    let total = 0;
    const a = this;
    const b = other;
    while (i < a.los.length && j < b.los.length) {
      const lo = Math.max(a.los[i], b.los[j], after + 1);
      const hi = Math.min(a.his[i], b.his[j]);
      if (hi >= lo) total += hi - lo + 1;
      if (a.his[i] < b.his[j]) i++;
      else j++;
    }
    return total;
  }

  /** Members of `expected` greater than `after` that this set lacks. */
  missingFrom(expected: IntervalSet, after = -Infinity): number {
    return expected.countAbove(after) - this.intersectionSize(expected, after);
  }

  /** Up to `limit` members of `expected` (> after) that this set lacks, ascending (for reports). */
  listMissing(expected: IntervalSet, after = -Infinity, limit = 20): number[] {
    const out: number[] = [];
    for (const [lo, hi] of expected.ranges()) {
      for (let v = Math.max(lo, after + 1); v <= hi && out.length < limit; v++) if (!this.has(v)) out.push(v);
      if (out.length >= limit) break;
    }
    return out;
  }
}
