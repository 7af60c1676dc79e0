import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { AppError, httpErrorBody, toAppError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The only uWS HTTP glue. uWS rules kept here: copy everything out of `req` before
 * the first await (it is stack-allocated), register onAborted before anything
 * async, and cork every write that happens after an await.
 */
export interface HttpContext {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly params: readonly string[];
  readonly authorization: string;
  readonly contentType: string;
  readonly userAgent: string;
  readonly ip: string;
  readonly res: HttpResponse;
  aborted: boolean;
  /** Called once if the client goes away (set while a body is being read). */
  onAbort?: () => void;
  /** Extra response headers (e.g. paging cursors). */
  headers?: Record<string, string>;
}

export interface Reply {
  status: number;
  /** A value to JSON-encode, or a pre-encoded JSON string (raw: true). */
  body: unknown;
  raw?: boolean;
  contentType?: string;
}

export interface RespondOptions {
  corsOrigin: string;
  trustProxy: boolean;
  log: Logger;
}

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function captureRequest(res: HttpResponse, req: HttpRequest, paramCount: number, opts: RespondOptions): HttpContext {
  const params: string[] = [];
  for (let i = 0; i < paramCount; i++) params.push(decodeParam(req.getParameter(i) ?? ''));
  let ip = '';
  if (opts.trustProxy) ip = forwardedClient(req.getHeader('x-forwarded-for'));
  if (!ip) ip = Buffer.from(res.getRemoteAddressAsText()).toString();
  const ctx: HttpContext = {
    method: req.getCaseSensitiveMethod?.() ?? req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ''),
    params,
    authorization: req.getHeader('authorization'),
    contentType: req.getHeader('content-type'),
    userAgent: req.getHeader('user-agent'),
    ip,
    res,
    aborted: false,
  };
  res.onAborted(() => {
    ctx.aborted = true;
    ctx.onAbort?.();
  });
  return ctx;
}

/**
 * The client address behind one trusted proxy: the entry it appended last. Entries
 * to the left came from the client itself (Nginx's $proxy_add_x_forwarded_for keeps
 * them), so taking the first would let anyone pick their IP and dodge rate limits.
 */
function forwardedClient(header: string): string {
  return header.slice(header.lastIndexOf(',') + 1).trim();
}

/**
 * A path parameter, percent-decoded. A malformed escape (`%E0%A4%A`) stays as it
 * came: the route then rejects it as a bad id. decodeURIComponent would throw,
 * and an exception in a uWS handler aborts the whole process.
 */
function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * Reads the request body as JSON with a size cap. Rejects with payload_too_large
 * as soon as the cap is passed (the rest is not buffered), invalid_json on bad
 * JSON, unsupported_media_type for a non-JSON content type. An empty body is {}.
 */
export function readJson(ctx: HttpContext, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (ctx.contentType && !/^application\/(.+\+)?json\b/i.test(ctx.contentType)) {
      reject(new AppError('unsupported_media_type'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    // A client that disconnects mid-body must not leave this promise pending forever.
    ctx.onAbort = () => {
      if (done) return;
      done = true;
      reject(new AppError('invalid_payload', 'request aborted'));
    };
    ctx.res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        done = true;
        reject(new AppError('payload_too_large', `Request body exceeds ${maxBytes} bytes`));
        return;
      }
      // uWS reuses the chunk's memory after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (!isLast) return;
      done = true;
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (text.trim() === '') {
        resolve({});
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new AppError('invalid_json'));
      }
    });
  });
}

function writeCors(res: HttpResponse, origin: string): void {
  res.writeHeader('Access-Control-Allow-Origin', origin);
  res.writeHeader('Vary', 'Origin');
}

export function send(ctx: HttpContext, reply: Reply, opts: RespondOptions): void {
  if (ctx.aborted) return;
  const body =
    reply.status === 204 ? '' : reply.raw ? (reply.body as string) : JSON.stringify(reply.body);
  ctx.res.cork(() => {
    ctx.res.writeStatus(statusLines[reply.status] ?? String(reply.status));
    writeCors(ctx.res, opts.corsOrigin);
    if (ctx.headers) for (const name in ctx.headers) ctx.res.writeHeader(name, ctx.headers[name]);
    if (reply.status !== 204) ctx.res.writeHeader('Content-Type', reply.contentType ?? 'application/json; charset=utf-8');
    ctx.res.end(body);
  });
}

export function sendError(ctx: HttpContext, err: unknown, opts: RespondOptions): void {
  const appErr = toAppError(err);
  if (appErr.status >= 500) {
    opts.log.error({ err, method: ctx.method, path: ctx.path, code: appErr.code }, 'request failed');
  }
  if (appErr.code === 'payload_too_large' && !ctx.aborted) {
    // The client may still be sending; answer and close rather than read the rest.
    ctx.aborted = true;
    ctx.res.cork(() => {
      ctx.res.writeStatus(statusLines[413]);
      writeCors(ctx.res, opts.corsOrigin);
      ctx.res.writeHeader('Content-Type', 'application/json; charset=utf-8');
      ctx.res.writeHeader('Connection', 'close');
      ctx.res.end(JSON.stringify(httpErrorBody(appErr)), true);
    });
    return;
  }
  const headers = appErr.code === 'rate_limited' && appErr.details && typeof appErr.details === 'object'
    ? { 'Retry-After': String((appErr.details as { retry_after_sec?: number }).retry_after_sec ?? 1) }
    : undefined;
  if (headers) ctx.headers = { ...ctx.headers, ...headers };
  send(ctx, { status: appErr.status, body: httpErrorBody(appErr) }, opts);
}

/** Answers a CORS preflight for any path. */
export function sendPreflight(res: HttpResponse, origin: string): void {
  res.cork(() => {
    res.writeStatus(statusLines[204]);
    writeCors(res, origin);
    res.writeHeader('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, OPTIONS');
    res.writeHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.writeHeader('Access-Control-Max-Age', '86400');
    res.end();
  });
}
