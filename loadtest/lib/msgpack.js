// Minimal MessagePack encoder/decoder for the k6 msgpack scenario.
//
// k6 cannot load npm packages, and its JS runtime has no Buffer, no TextEncoder and
// (depending on the version) no BigInt, so this file uses only Uint8Array/DataView and
// plain numbers. It is also imported by Node unit tests, which check it against msgpackr.
//
// Supported: nil, bool, positive/negative fixint, (u)int 8/16/32/64, float 32/64, fixstr,
// str 8/16/32, bin 8/16/32 (decoded to Uint8Array), fixarray/array 16/32, fixmap/map 16/32
// (decoded to plain objects), and the timestamp extension (-1, decoded to Date).
// 64-bit integers are decoded to Numbers (exact up to 2^53, like msgpackr's
// int64AsType: 'number'); other extension types are rejected with a clear error.

const POW32 = 4294967296;

export class MsgpackError extends Error {
  constructor(message) {
    super(message);
    this.name = 'MsgpackError';
  }
}

// ---------------------------------------------------------------- UTF-8 helpers

export function utf8Encode(str) {
  const out = [];
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: same as TextEncoder
    if (c < 0x80) {
      out.push(c);
    } else if (c < 0x800) {
      out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    } else {
      out.push(
        0xf0 | (c >> 18),
        0x80 | ((c >> 12) & 0x3f),
        0x80 | ((c >> 6) & 0x3f),
        0x80 | (c & 0x3f),
      );
    }
  }
  return out;
}

export function utf8Decode(bytes, start, end) {
  let s = '';
  let chunk = [];
  let i = start;
  while (i < end) {
    const b = bytes[i++];
    let c;
    if (b < 0x80) {
      c = b;
    } else if (b >= 0xc0 && b < 0xe0 && i < end) {
      c = ((b & 0x1f) << 6) | (bytes[i++] & 0x3f);
    } else if (b >= 0xe0 && b < 0xf0 && i + 1 < end) {
      c = ((b & 0x0f) << 12) | ((bytes[i] & 0x3f) << 6) | (bytes[i + 1] & 0x3f);
      i += 2;
    } else if (b >= 0xf0 && i + 2 < end) {
      c = ((b & 0x07) << 18) | ((bytes[i] & 0x3f) << 12) | ((bytes[i + 1] & 0x3f) << 6) |
        (bytes[i + 2] & 0x3f);
      i += 3;
    } else {
      c = 0xfffd;
    }
    if (c > 0xffff) {
      c -= 0x10000;
      chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else {
      chunk.push(c);
    }
    // fromCharCode.apply has an argument-count limit; flush in small chunks.
    if (chunk.length >= 4096) {
      s += String.fromCharCode.apply(null, chunk);
      chunk = [];
    }
  }
  if (chunk.length) s += String.fromCharCode.apply(null, chunk);
  return s;
}

// ---------------------------------------------------------------- encoder

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v) {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v) {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  f64(v) {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  bytes(arr) {
    this.ensure(arr.length);
    for (let i = 0; i < arr.length; i++) this.buf[this.pos++] = arr[i];
  }

  result() {
    return this.buf.slice(0, this.pos);
  }
}

function writeInt(w, v) {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v < 0x100) { w.u8(0xcc); w.u8(v); }
    else if (v < 0x10000) { w.u8(0xcd); w.u16(v); }
    else if (v < POW32) { w.u8(0xce); w.u32(v); }
    else { w.u8(0xcf); w.u32(Math.floor(v / POW32)); w.u32(v % POW32); }
    return;
  }
  if (v >= -0x20) w.u8(v & 0xff);
  else if (v >= -0x80) { w.u8(0xd0); w.u8(v & 0xff); }
  else if (v >= -0x8000) { w.u8(0xd1); w.u16(v & 0xffff); }
  else if (v >= -0x80000000) { w.u8(0xd2); w.u32(v >>> 0); }
  else {
    // Two's complement of a safe negative integer split into 32-bit halves.
    const hi = Math.floor(v / POW32);
    const lo = v - hi * POW32;
    w.u8(0xd3);
    w.u32(hi >>> 0);
    w.u32(lo >>> 0);
  }
}

function writeStr(w, s) {
  const b = utf8Encode(s);
  const n = b.length;
  if (n < 32) w.u8(0xa0 | n);
  else if (n < 0x100) { w.u8(0xd9); w.u8(n); }
  else if (n < 0x10000) { w.u8(0xda); w.u16(n); }
  else { w.u8(0xdb); w.u32(n); }
  w.bytes(b);
}

function writeValue(w, v, depth) {
  if (depth > 64) throw new MsgpackError('value nested too deeply');
  if (v === null || v === undefined) return w.u8(0xc0);
  if (v === false) return w.u8(0xc2);
  if (v === true) return w.u8(0xc3);
  const t = typeof v;
  if (t === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return writeInt(w, v);
    w.u8(0xcb);
    return w.f64(v);
  }
  if (t === 'string') return writeStr(w, v);
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) {
    const b = v instanceof Uint8Array ? v : new Uint8Array(v);
    const n = b.length;
    if (n < 0x100) { w.u8(0xc4); w.u8(n); }
    else if (n < 0x10000) { w.u8(0xc5); w.u16(n); }
    else { w.u8(0xc6); w.u32(n); }
    return w.bytes(b);
  }
  if (v instanceof Date) {
    // timestamp 96: nanoseconds (uint32) + seconds (int64)
    const ms = v.getTime();
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1e6;
    w.u8(0xc7); w.u8(12); w.u8(0xff);
    w.u32(nsec);
    const hi = Math.floor(sec / POW32);
    w.u32(hi >>> 0);
    w.u32((sec - hi * POW32) >>> 0);
    return undefined;
  }
  if (Array.isArray(v)) {
    const n = v.length;
    if (n < 16) w.u8(0x90 | n);
    else if (n < 0x10000) { w.u8(0xdc); w.u16(n); }
    else { w.u8(0xdd); w.u32(n); }
    for (let i = 0; i < n; i++) writeValue(w, v[i], depth + 1);
    return undefined;
  }
  if (t === 'object') {
    // Like JSON.stringify: properties whose value is undefined are skipped.
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    const n = keys.length;
    if (n < 16) w.u8(0x80 | n);
    else if (n < 0x10000) { w.u8(0xde); w.u16(n); }
    else { w.u8(0xdf); w.u32(n); }
    for (let i = 0; i < n; i++) {
      writeStr(w, keys[i]);
      writeValue(w, v[keys[i]], depth + 1);
    }
    return undefined;
  }
  throw new MsgpackError('cannot encode value of type ' + t);
}

/** Encodes a JS value; returns a Uint8Array. */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

/** Encodes to a standalone ArrayBuffer, the type k6's socket.sendBinary() expects. */
export function encodeToArrayBuffer(value) {
  return encode(value).buffer;
}

// ---------------------------------------------------------------- decoder

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input && input.buffer instanceof ArrayBuffer && typeof input.byteLength === 'number') {
    return new Uint8Array(input.buffer, input.byteOffset || 0, input.byteLength);
  }
  throw new MsgpackError('decode expects a Uint8Array or ArrayBuffer');
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) {
      throw new MsgpackError('unexpected end of input at byte ' + this.pos);
    }
  }

  u8() { this.need(1); return this.bytes[this.pos++]; }
  u16() { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  i8() { this.need(1); const v = this.view.getInt8(this.pos); this.pos += 1; return v; }
  i16() { this.need(2); const v = this.view.getInt16(this.pos); this.pos += 2; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.pos); this.pos += 4; return v; }
  f32() { this.need(4); const v = this.view.getFloat32(this.pos); this.pos += 4; return v; }
  f64() { this.need(8); const v = this.view.getFloat64(this.pos); this.pos += 8; return v; }
  u64() { const hi = this.u32(); const lo = this.u32(); return hi * POW32 + lo; }
  i64() { const hi = this.i32(); const lo = this.u32(); return hi * POW32 + lo; }

  str(n) {
    this.need(n);
    const s = utf8Decode(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  bin(n) {
    this.need(n);
    const b = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

function readArray(r, n, depth) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  const out = {};
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    // Keys become property names, as in msgpackr's mapsAsObjects mode.
    const key = typeof k === 'string' ? k : String(k);
    if (key === '__proto__') {
      // Never let a peer rewrite the prototype of decoded objects.
      Object.defineProperty(out, key, {
        value: readValue(r, depth + 1), enumerable: true, writable: true, configurable: true,
      });
    } else {
      out[key] = readValue(r, depth + 1);
    }
  }
  return out;
}

function readExt(r, n) {
  const type = r.i8();
  if (type === -1) {
    if (n === 4) return new Date(r.u32() * 1000);
    if (n === 8) {
      const hi = r.u32();
      const lo = r.u32();
      const nsec = Math.floor(hi / 4); // upper 30 bits
      const sec = (hi & 0x3) * POW32 + lo; // lower 34 bits
      return new Date(sec * 1000 + nsec / 1e6);
    }
    if (n === 12) {
      const nsec = r.u32();
      const sec = r.i64();
      return new Date(sec * 1000 + nsec / 1e6);
    }
  }
  const hint = type === 0x72 || type === 0x73 ?
    ' (msgpackr records/structures? the server must encode with useRecords: false)' : '';
  throw new MsgpackError('unsupported extension type ' + type + hint);
}

function readValue(r, depth) {
  if (depth > 64) throw new MsgpackError('input nested too deeply');
  const b = r.u8();
  if (b < 0x80) return b;
  if (b < 0x90) return readMap(r, b & 0x0f, depth);
  if (b < 0xa0) return readArray(r, b & 0x0f, depth);
  if (b < 0xc0) return r.str(b & 0x1f);
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.bin(r.u8());
    case 0xc5: return r.bin(r.u16());
    case 0xc6: return r.bin(r.u32());
    case 0xc7: return readExt(r, r.u8());
    case 0xc8: return readExt(r, r.u16());
    case 0xc9: return readExt(r, r.u32());
    case 0xca: return r.f32();
    case 0xcb: return r.f64();
    case 0xcc: return r.u8();
    case 0xcd: return r.u16();
    case 0xce: return r.u32();
    case 0xcf: return r.u64();
    case 0xd0: return r.i8();
    case 0xd1: return r.i16();
    case 0xd2: return r.i32();
    case 0xd3: return r.i64();
    case 0xd4: return readExt(r, 1);
    case 0xd5: return readExt(r, 2);
    case 0xd6: return readExt(r, 4);
    case 0xd7: return readExt(r, 8);
    case 0xd8: return readExt(r, 16);
    case 0xd9: return r.str(r.u8());
    case 0xda: return r.str(r.u16());
    case 0xdb: return r.str(r.u32());
    case 0xdc: return readArray(r, r.u16(), depth);
    case 0xdd: return readArray(r, r.u32(), depth);
    case 0xde: return readMap(r, r.u16(), depth);
    case 0xdf: return readMap(r, r.u32(), depth);
    default: throw new MsgpackError('invalid type byte 0x' + b.toString(16));
  }
}

/** Decodes exactly one value; trailing bytes are an error (a frame holds one envelope). */
export function decode(input) {
  const r = new Reader(toBytes(input));
  const v = readValue(r, 0);
  if (r.pos !== r.bytes.length) {
    throw new MsgpackError('trailing bytes after value: ' + (r.bytes.length - r.pos));
  }
  return v;
}
