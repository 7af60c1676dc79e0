import { cpus, loadavg, platform, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  /** 1-minute load average when the result was saved: other work on the machine skews the figures. */
  loadavg1: number;
}

export function machineInfo(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()}`,
    loadavg1: Math.round(loadavg()[0] * 100) / 100,
  };
}

export function machineLine(m: Machine = machineInfo()): string {
  return `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}`;
}

/** CPU time of this process over an interval, as % of one core (200 % = two cores busy). */
export class CpuMeter {
  private startUsage = process.cpuUsage();
  private startAt = performance.now();

  reset(): void {
    this.startUsage = process.cpuUsage();
    this.startAt = performance.now();
  }

  read(): { userMs: number; systemMs: number; wallMs: number; percent: number } {
    const u = process.cpuUsage(this.startUsage);
    const wallMs = performance.now() - this.startAt;
    const userMs = u.user / 1000;
    const systemMs = u.system / 1000;
    return { userMs, systemMs, wallMs, percent: wallMs > 0 ? ((userMs + systemMs) / wallMs) * 100 : 0 };
  }
}
