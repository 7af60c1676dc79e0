import { runWorker } from '../worker.js';

/**
 * One worker process without the cluster primary: for an external supervisor
 * that runs one process per core itself, and for tests that need to kill -9 the
 * exact process holding a socket.
 */
void runWorker();
