import { IntervalSet } from './interval-set.js';

export type SeqVerdict = 'ok' | 'gap' | 'duplicate' | 'out_of_order' | 'before_baseline';

/**
 * Correctness bookkeeping of one receiver in one room (PROTOCOL.md guarantee 1:
 * gapless, ordered, exactly once). `baseline` is the room's seq the receiver is
 * owed messages after: joined_room.last_seq for a live join, or last_seen_seq
 * when resuming. Every seq is classified as it arrives:
 *   ok              the next one (last + 1)
 *   gap             skips ahead (the skipped seqs are counted in gapSeqs)
 *   duplicate       seen before
 *   out_of_order    older than the newest seen, not seen before, after the baseline
 *   before_baseline older than the baseline and new: allowed (a live join may get
 *                   messages committed just before its joined_room), not an error
 * After the run, missing(acked) says which acknowledged messages never came.
 */
export class SeqTracker {
  readonly seen = new IntervalSet();
  /** Newest seq received (or the baseline). */
  last: number;
  received = 0;
  inOrder = 0;
  gaps = 0;
  gapSeqs = 0;
  duplicates = 0;
  outOfOrder = 0;
  beforeBaseline = 0;

  constructor(readonly baseline: number) {
    this.last = baseline;
  }

  observe(seq: number): SeqVerdict {
    this.received++;
    if (seq === this.last + 1) {
      this.seen.add(seq);
      this.last = seq;
      this.inOrder++;
      return 'ok';
    }
    if (seq > this.last) {
      this.seen.add(seq);
      this.gaps++;
      this.gapSeqs += seq - this.last - 1;
      this.last = seq;
      return 'gap';
    }
    if (!this.seen.add(seq)) {
      this.duplicates++;
      return 'duplicate';
    }
    if (seq <= this.baseline) {
      this.beforeBaseline++;
      return 'before_baseline';
    }
    this.outOfOrder++;
    return 'out_of_order';
  }

  /** Acknowledged seqs (after the baseline) this receiver does not hold. */
  missing(acked: IntervalSet): number {
    return this.seen.missingFrom(acked, this.baseline);
  }

  /** Seqs received after the baseline that nobody had acknowledged (other writers, or lost acks). */
  unacknowledged(acked: IntervalSet): number {
    return this.seen.countAbove(this.baseline) - this.seen.intersectionSize(acked, this.baseline);
  }

  /** Anomalies of the live stream so far (0 for a correct server). */
  get anomalies(): number {
    return this.gaps + this.duplicates + this.outOfOrder;
  }
}
