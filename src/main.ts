import cluster from 'node:cluster';
import { runPrimary } from './primary.js';
import { runWorker } from './worker.js';

if (cluster.isPrimary) void runPrimary();
else void runWorker();
