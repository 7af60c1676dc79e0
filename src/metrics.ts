import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import client from 'prom-client';

/**
 * Prometheus metrics of one worker (prom-client: the standard Node exporter; it
 * keeps counters as plain numbers, cheap enough for hot paths).
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'pgchat_' });
// With several primaries per host (PM2 instances), scrapes tell them apart.
if (process.env.NODE_APP_INSTANCE !== undefined) registry.setDefaultLabels({ instance: process.env.NODE_APP_INSTANCE });
// In a cluster, the primary collects every worker's registry over IPC (prom-client's
// aggregator); a worker answers those requests only once an aggregator exists in it.
client.AggregatorRegistry.setRegistries([registry]);
if (cluster.isWorker) new client.AggregatorRegistry();

export const metrics = {
  httpRequests: new client.Counter({
    name: 'pgchat_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  }),
  wsConnections: new client.Gauge({ name: 'pgchat_ws_connections', help: 'Open WebSocket connections', registers: [registry] }),
  wsClosed: new client.Counter({
    name: 'pgchat_ws_closed_total',
    help: 'WebSocket closes by code',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  messagesStored: new client.Counter({ name: 'pgchat_messages_stored_total', help: 'Messages committed by this worker', registers: [registry] }),
  writeFlushes: new client.Counter({ name: 'pgchat_write_flushes_total', help: 'Group-commit flushes', registers: [registry] }),
  messagesPublished: new client.Counter({
    name: 'pgchat_messages_published_total',
    help: 'Messages published to local room topics',
    registers: [registry],
  }),
  framesPublished: new client.Counter({ name: 'pgchat_frames_published_total', help: 'Encoded batch frames published', registers: [registry] }),
  gapRepairs: new client.Counter({ name: 'pgchat_gap_repairs_total', help: 'Range reads that filled a gap in the live stream', registers: [registry] }),
  listenReconnects: new client.Counter({ name: 'pgchat_listen_reconnects_total', help: 'LISTEN connection reconnects', registers: [registry] }),
  slowConsumers: new client.Counter({
    name: 'pgchat_slow_consumers_total',
    help: 'Sockets paused for backpressure (then repaired) or closed',
    labelNames: ['action'] as const,
    registers: [registry],
  }),
  errorFrames: new client.Counter({
    name: 'pgchat_ws_error_frames_total',
    help: 'error frames sent, by code',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
};

const HOST_METRICS_REQ = 'pgchat:host-metrics-req';
const HOST_METRICS_RES = 'pgchat:host-metrics-res';

/**
 * Metrics of every worker of this host: a worker asks the primary, which
 * aggregates all workers. Outside a cluster (tests, one process), this worker's.
 */
export function hostMetrics(timeoutMs = 2000): Promise<string> {
  if (!cluster.isWorker || !process.send) return registry.metrics();
  const id = randomUUID();
  return new Promise((resolve) => {
    const onMessage = (msg: { type?: string; id?: string; text?: string }) => {
      if (msg?.type !== HOST_METRICS_RES || msg.id !== id) return;
      done(msg.text ?? '');
    };
    const timer = setTimeout(() => void registry.metrics().then(done), timeoutMs);
    const done = (text: string) => {
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(text);
    };
    process.on('message', onMessage);
    process.send!({ type: HOST_METRICS_REQ, id });
  });
}

/** Primary side of hostMetrics. */
export function serveHostMetrics(): void {
  const aggregator = new client.AggregatorRegistry();
  cluster.on('message', (worker, msg: { type?: string; id?: string }) => {
    if (msg?.type !== HOST_METRICS_REQ) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: HOST_METRICS_RES, id: msg.id, text }),
      () => worker.send({ type: HOST_METRICS_RES, id: msg.id, text: '' }),
    );
  });
}
