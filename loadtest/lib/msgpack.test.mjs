import test from 'node:test';
import assert from 'node:assert/strict';

import { Packr, Unpackr, pack } from 'msgpackr';

import { MsgpackError, decode, encode, encodeToArrayBuffer, utf8Decode, utf8Encode } from './msgpack.js';

// Standard msgpack on both sides: msgpackr's Packr defaults to its records extension, which
// is not standard, so the reference packer disables it (the server must do the same).
const refPack = new Packr({ useRecords: false });
const refUnpack = new Unpackr({ useRecords: false, int64AsType: 'number' });

const SAMPLES = [
  null, true, false,
  0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53 - 1,
  -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -(2 ** 53 - 1),
  0.5, -1.25, 3.141592653589793, 1e300, -0, Number.MAX_VALUE,
  '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'y'.repeat(70000),
  'héllo wörld', '日本語テキスト', 'emoji 👋🏽 and 𝄞',
  [], [1, 2, 3], Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i),
  Array.from({ length: 70000 }, (_, i) => i % 300),
  {}, { a: 1 }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => ['k' + i, i])),
  { event: 'new_message_batch', data: [{ id: 1, seq: 2, room_id: 'r', user_id: 'u', username: 'n', content: 'c', created_at: '2025-01-01T00:00:00.000Z' }] },
  { nested: { deeper: { list: [{ x: null }, 'str', -5.5, true] } } },
];

test('our encoding decodes to the same value with msgpackr', () => {
  for (const v of SAMPLES) {
    const got = refUnpack.unpack(encode(v));
    if (Object.is(v, -0)) assert.ok(Object.is(got, -0));
    else assert.deepEqual(got, v, `value ${JSON.stringify(v)?.slice(0, 60)}`);
  }
});

test('msgpackr encodings decode to the same value with ours', () => {
  for (const v of SAMPLES) {
    for (const bytes of [refPack.pack(v), pack(v)]) {
      const got = decode(bytes);
      if (Object.is(v, -0)) assert.ok(got === 0); // msgpackr writes -0 as integer 0
      else assert.deepEqual(got, v, `value ${JSON.stringify(v)?.slice(0, 60)}`);
    }
  }
});

test('round trip through our own encoder and decoder', () => {
  for (const v of SAMPLES) {
    const got = decode(encode(v));
    if (Object.is(v, -0)) assert.ok(Object.is(got, -0));
    else assert.deepEqual(got, v);
  }
});

test('64-bit integers are encoded exactly and decoded as numbers', () => {
  // Our encoder uses uint64/int64 beyond 32 bits (msgpackr would use float64).
  assert.equal(encode(2 ** 40)[0], 0xcf);
  assert.equal(encode(-(2 ** 40))[0], 0xd3);
  assert.equal(refUnpack.unpack(encode(2 ** 53 - 1)), 2 ** 53 - 1);
  assert.equal(refUnpack.unpack(encode(-(2 ** 40) - 7)), -(2 ** 40) - 7);
  // Hand-built uint64 / int64 frames as another server might send them.
  assert.equal(decode(Uint8Array.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 5])), 4294967301);
  assert.equal(decode(Uint8Array.from([0xd3, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0])), -8589934592);
  assert.equal(decode(Uint8Array.from([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), -1);
});

test('bin values decode to Uint8Array and encode as bin', () => {
  const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
  const got = decode(refPack.pack(bytes));
  assert.ok(got instanceof Uint8Array);
  assert.deepEqual([...got], [...bytes]);
  const ours = encode(bytes);
  assert.equal(ours[0], 0xc4);
  assert.deepEqual([...refUnpack.unpack(ours)], [...bytes]);
  const big = new Uint8Array(70000).fill(7);
  assert.equal(decode(encode(big)).length, 70000);
  assert.equal(encode(new Uint8Array(300))[0], 0xc5);
});

test('float32 and timestamps from msgpackr decode', () => {
  const f32 = new Packr({ useRecords: false, useFloat32: 1 }).pack(1.5);
  assert.equal(f32[0], 0xca);
  assert.equal(decode(f32), 1.5);
  for (const d of [new Date(0), new Date(1700000000000), new Date(1700000000123), new Date(-5000)]) {
    const got = decode(refPack.pack(d));
    assert.ok(got instanceof Date);
    assert.equal(got.getTime(), d.getTime());
    assert.equal(refUnpack.unpack(encode(d)).getTime(), d.getTime());
  }
});

test('decode accepts ArrayBuffer (what k6 hands to binaryMessage) and subarrays', () => {
  const v = { event: 'joined_room', data: { room_id: 'r', last_seq: 3 } };
  const ab = encodeToArrayBuffer(v);
  assert.ok(ab instanceof ArrayBuffer);
  assert.equal(ab.byteLength, encode(v).length, 'no slack bytes in the ArrayBuffer');
  assert.deepEqual(decode(ab), v);
  const padded = new Uint8Array(ab.byteLength + 4);
  padded.set(new Uint8Array(ab), 2);
  assert.deepEqual(decode(padded.subarray(2, 2 + ab.byteLength)), v);
});

test('malformed input fails with MsgpackError', () => {
  assert.throws(() => decode(Uint8Array.from([0xc1])), MsgpackError); // never used
  assert.throws(() => decode(Uint8Array.from([0xa5, 0x61])), MsgpackError); // truncated str
  assert.throws(() => decode(Uint8Array.from([0x01, 0x02])), /trailing/);
  assert.throws(() => decode(new Packr().pack({ a: 1 })), /records/); // msgpackr records ext
  assert.throws(() => decode('not bytes'), MsgpackError);
  assert.throws(() => encode(() => 1), MsgpackError);
  let deep = [];
  for (let i = 0; i < 100; i++) deep = [deep];
  assert.throws(() => encode(deep), /nested/);
});

test('decoded maps cannot rewrite prototypes', () => {
  const bytes = refPack.pack(JSON.parse('{"__proto__":{"polluted":1},"ok":2}'));
  const got = decode(bytes);
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  assert.equal({}.polluted, undefined);
  assert.equal(got.ok, 2);
});

test('utf8 helpers agree with TextEncoder/TextDecoder', () => {
  const te = new TextEncoder();
  const td = new TextDecoder();
  for (const s of ['', 'ascii', 'ü', '€', '𝄞', 'mixed ü € 𝄞 a', '\ud800 lone']) {
    const mine = Uint8Array.from(utf8Encode(s));
    assert.deepEqual([...mine], [...te.encode(s)], s);
    assert.equal(utf8Decode(mine, 0, mine.length), td.decode(te.encode(s)));
  }
});

test('undefined object properties are skipped like JSON', () => {
  assert.deepEqual(decode(encode({ a: 1, b: undefined })), { a: 1 });
  assert.deepEqual(refUnpack.unpack(encode({ a: undefined })), {});
});
