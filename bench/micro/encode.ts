import { decodeServerFrame, encodeMessages } from '../../src/ws/protocol.js';
import type { ResultTable } from '../lib/results.js';
import { fmtBytes, fmtNum } from '../lib/table.js';
import { opsPerSec } from './harness.js';

/** A message body as pgchat_message_json builds it (compact JSON, ~64-byte content). */
export function sampleBody(seq: number, contentBytes = 64): string {
  return JSON.stringify({
    id: 1_000_000 + seq,
    seq,
    room_id: '0192f1c2-7d3a-7c4e-9a1b-3c5d7e9f1a2b',
    user_id: '0192f1c2-7d3a-7c4e-9a1b-000000000042',
    username: 'user_0042',
    content: 'x'.repeat(contentBytes),
    created_at: '2025-11-28T06:00:00.123Z',
    client_msg_id: `c${seq}`,
  });
}

/**
 * (a) Frame encoding of a live batch, JSON (string splice of the stored JSON)
 * vs msgpack (JSON.parse + pack), the way the hub encodes once per room and
 * framing; and the client's decode of the same frame.
 */
export function benchEncode(ms: number): ResultTable {
  const rows = [];
  for (const n of [1, 10, 100]) {
    const bodies = Array.from({ length: n }, (_, i) => sampleBody(i + 1));
    for (const framing of ['json', 'msgpack'] as const) {
      const frame = encodeMessages(framing, bodies);
      const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
      // A JSON frame is a rope of concatenated strings until someone reads it; uWS turns it into
      // UTF-8 bytes on publish, so the JSON case includes that conversion (msgpack returns bytes).
      const enc = opsPerSec(
        framing === 'json' ? () => Buffer.from(encodeMessages('json', bodies) as string, 'utf8') : () => encodeMessages('msgpack', bodies),
        ms,
      );
      const wire = typeof frame === 'string' ? Buffer.from(frame) : frame;
      const dec = opsPerSec(() => decodeServerFrame(framing === 'json' ? (wire as Buffer).toString('utf8') : wire, framing === 'msgpack'), ms);
      rows.push([n, framing, fmtNum(enc), fmtNum(enc * n), fmtBytes(bytes), fmtNum(bytes / n), fmtNum(dec), fmtNum(dec * n)]);
    }
  }
  return {
    title:
      '(a) frame encoding: encodeMessages to bytes (server, once per room and framing per flush; JSON includes the UTF-8 copy) and decodeServerFrame (client)',
    headers: ['batch', 'framing', 'encode frames/s', 'encode msgs/s', 'frame size', 'bytes/msg', 'decode frames/s', 'decode msgs/s'],
    rows,
  };
}
