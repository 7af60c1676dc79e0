import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Args } from '../bench/lib/args.js';
import { Histogram, percentile, summarize } from '../bench/lib/histogram.js';
import { IntervalSet } from '../bench/lib/interval-set.js';
import { SeqTracker } from '../bench/lib/seq-tracker.js';
import { fmtPct, formatTable, markdownTable } from '../bench/lib/table.js';

function setOf(values: number[]): IntervalSet {
  const s = new IntervalSet();
  for (const v of values) s.add(v);
  return s;
}

describe('bench IntervalSet', () => {
  it('keeps an in-order stream as one range', () => {
    const s = setOf([1, 2, 3, 4, 5]);
    assert.deepEqual(s.ranges(), [[1, 5]]);
    assert.equal(s.size, 5);
  });

  it('reports repeats and merges ranges when a hole is filled', () => {
    const s = setOf([1, 2, 5, 6, 9]);
    assert.deepEqual(s.ranges(), [[1, 2], [5, 6], [9, 9]]);
    assert.equal(s.add(5), false);
    assert.equal(s.add(4), true);
    assert.equal(s.add(3), true);
    assert.deepEqual(s.ranges(), [[1, 6], [9, 9]]);
    assert.equal(s.add(8), true);
    assert.equal(s.add(7), true);
    assert.deepEqual(s.ranges(), [[1, 9]]);
    assert.equal(s.size, 9);
    assert.equal(s.has(0), false);
    assert.equal(s.has(10), false);
  });

  it('inserts below the first range and between ranges', () => {
    const s = setOf([10, 20]);
    s.add(1);
    s.add(15);
    assert.deepEqual(s.ranges(), [[1, 1], [10, 10], [15, 15], [20, 20]]);
  });

  it('matches a plain Set under random inserts', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const s = new IntervalSet();
    const ref = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const v = Math.floor(rnd() * 2000);
      assert.equal(s.add(v), !ref.has(v));
      ref.add(v);
    }
    assert.equal(s.size, ref.size);
    for (let v = -1; v <= 2001; v++) assert.equal(s.has(v), ref.has(v), `value ${v}`);
    const ranges = s.ranges();
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] > ranges[i - 1][1] + 1, 'disjoint, non-adjacent');
  });

  it('counts members above a bound, intersections and what is missing', () => {
    const expected = setOf([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const got = setOf([1, 2, 3, 5, 6, 9, 10, 11]);
    assert.equal(expected.countAbove(0), 10);
    assert.equal(expected.countAbove(4), 6);
    assert.equal(got.intersectionSize(expected), 7);
    assert.equal(got.missingFrom(expected), 3); // 4, 7, 8
    assert.equal(got.missingFrom(expected, 7), 1); // 8
    assert.deepEqual(got.listMissing(expected), [4, 7, 8]);
    assert.equal(new IntervalSet().missingFrom(expected, 5), 5);
  });
});

describe('bench SeqTracker', () => {
  it('classifies an in-order stream after the baseline as ok', () => {
    const t = new SeqTracker(10);
    for (let s = 11; s <= 20; s++) assert.equal(t.observe(s), 'ok');
    assert.equal(t.anomalies, 0);
    assert.equal(t.inOrder, 10);
    assert.equal(t.missing(setOf([11, 12, 13, 14, 15, 16, 17, 18, 19, 20])), 0);
  });

  it('counts gaps, late fills (out of order) and duplicates', () => {
    const t = new SeqTracker(0);
    assert.equal(t.observe(1), 'ok');
    assert.equal(t.observe(4), 'gap');
    assert.equal(t.gapSeqs, 2);
    assert.equal(t.observe(2), 'out_of_order');
    assert.equal(t.observe(2), 'duplicate');
    assert.equal(t.observe(4), 'duplicate');
    assert.equal(t.observe(5), 'ok');
    assert.deepEqual({ gaps: t.gaps, dups: t.duplicates, ooo: t.outOfOrder, last: t.last }, { gaps: 1, dups: 2, ooo: 1, last: 5 });
    const acked = setOf([1, 2, 3, 4, 5]);
    assert.equal(t.missing(acked), 1); // 3 never came
  });

  it('does not count messages from before the baseline as errors, nor as missing', () => {
    // A live join can get messages committed just before its joined_room.last_seq.
    const t = new SeqTracker(10);
    assert.equal(t.observe(9), 'before_baseline');
    assert.equal(t.observe(10), 'before_baseline');
    assert.equal(t.observe(11), 'ok');
    assert.equal(t.observe(10), 'duplicate');
    assert.equal(t.anomalies, 1);
    // Acked messages up to the baseline are not owed to this receiver.
    assert.equal(t.missing(setOf([5, 6, 7, 8, 9, 10, 11, 12])), 1); // only 12
  });

  it('finds deliveries nobody acknowledged', () => {
    const t = new SeqTracker(0);
    for (const s of [1, 2, 3, 4]) t.observe(s);
    assert.equal(t.unacknowledged(setOf([1, 2, 4])), 1);
  });
});

describe('bench percentiles', () => {
  it('uses the nearest rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 99), 99);
    assert.equal(percentile(v, 99.5), 100);
    assert.equal(percentile(v, 100), 100);
    assert.equal(percentile(v, 0), 1);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.equal(percentile([1, 2, 3], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
  });

  it('summarizes unsorted samples without changing them', () => {
    const v = [5, 1, 4, 2, 3];
    const s = summarize(v);
    assert.deepEqual(v, [5, 1, 4, 2, 3]);
    assert.deepEqual({ count: s.count, min: s.min, p50: s.p50, max: s.max, mean: s.mean }, { count: 5, min: 1, p50: 3, max: 5, mean: 3 });
    assert.equal(summarize([]).count, 0);
  });

  it('histogram percentiles stay within 1 % above the exact ones', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values = Array.from({ length: 20000 }, () => Math.exp(rnd() * 8) / 10); // 0.1 ms .. 300 ms, log-uniform
    const h = new Histogram();
    for (const v of values) h.record(v);
    const sorted = Float64Array.from(values).sort();
    for (const p of [1, 50, 90, 95, 99, 99.9]) {
      const exact = percentile(sorted, p);
      const approx = h.percentile(p);
      assert.ok(approx >= exact, `p${p}: ${approx} >= ${exact}`);
      assert.ok(approx <= exact * (1 + Histogram.relativeError) + 1e-9, `p${p}: ${approx} <= ${exact} + 1 %`);
    }
    assert.equal(h.percentile(100), sorted[sorted.length - 1]);
    assert.equal(h.count, 20000);
  });

  it('histograms merge and survive JSON (IPC between generator processes)', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 50; i++) a.record(i);
    for (let i = 51; i <= 100; i++) b.record(i);
    const merged = Histogram.fromJSON(JSON.parse(JSON.stringify(a.toJSON()))).merge(b);
    assert.equal(merged.count, 100);
    assert.equal(merged.min, 1);
    assert.equal(merged.max, 100);
    assert.ok(Math.abs(merged.percentile(50) - 50) <= 0.5);
    assert.ok(Number.isNaN(new Histogram().percentile(50)));
    const empty = Histogram.fromJSON(JSON.parse(JSON.stringify(new Histogram().toJSON())));
    assert.equal(empty.count, 0);
    assert.equal(empty.merge(a).min, 1);
  });

  it('clamps tiny and negative samples', () => {
    const h = new Histogram();
    h.record(-0.5);
    h.record(0);
    h.record(0.0001);
    assert.equal(h.count, 3);
    assert.equal(h.min, 0);
    assert.ok(h.percentile(99) <= 0.001);
  });
});

describe('bench tables and options', () => {
  it('aligns numbers right and text left', () => {
    const t = formatTable(['name', 'ops/s'], [['json', '1,234'], ['msgpack', '99']]);
    const lines = t.split('\n');
    assert.equal(lines[0], 'name     ops/s');
    assert.equal(lines[2], 'json     1,234');
    assert.equal(lines[3], 'msgpack     99');
    assert.match(markdownTable(['a', 'b'], [['x', 1]]), /\| a \| b \|\n\|---\|---:\|\n\| x \| 1 \|/);
  });

  it('never rounds a shortfall up to 100 %', () => {
    assert.equal(fmtPct(1), '100 %');
    assert.equal(fmtPct(0.999996), '99.99 %');
    assert.equal(fmtPct(0.5), '50.00 %');
  });

  it('reads flags, then the environment, then defaults', () => {
    const a = new Args(['--scenario', 'seed', '--full', '--rate=7', '--steps', '1,2,3'], { DURATION: '9', RATE: '1' });
    assert.equal(a.str('scenario', 'all'), 'seed');
    assert.equal(a.bool('full'), true);
    assert.equal(a.num('rate', 5), 7);
    assert.equal(a.num('duration', 60), 9);
    assert.equal(a.num('receivers', 200), 200);
    assert.deepEqual(a.list('steps', []), [1, 2, 3]);
    assert.deepEqual(new Args(['--typo', '1']).unknown(), ['typo']);
  });
});
