/** Runs fn repeatedly for about `ms` (after a warm-up) and returns calls per second. */
export function opsPerSec(fn: () => unknown, ms = 500, warmupMs = 100): number {
  let sink: unknown;
  const until = (deadline: number) => {
    let n = 0;
    let batch = 1;
    while (performance.now() < deadline) {
      for (let i = 0; i < batch; i++) sink = fn();
      n += batch;
      if (batch < 1024) batch *= 2;
    }
    return n;
  };
  until(performance.now() + warmupMs);
  const t0 = performance.now();
  const n = until(t0 + ms);
  const elapsed = performance.now() - t0;
  if (sink === Symbol.for('never')) console.log(sink); // keep the result alive
  return (n / elapsed) * 1000;
}

export const log = (msg: string) => process.stderr.write(`${msg}\n`);
