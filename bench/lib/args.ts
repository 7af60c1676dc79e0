/**
 * Tiny command-line reader: `--name value`, `--name=value`, bare `--flag` (true).
 * A setting is looked up as the flag, then an environment variable
 * (NAME_IN_CAPS with - → _), then the default.
 */
export class Args {
  private readonly flags = new Map<string, string>();
  readonly positional: string[] = [];
  private readonly used = new Set<string>();

  constructor(
    argv: string[],
    private readonly env: Record<string, string | undefined> = process.env,
  ) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('--')) {
        this.positional.push(a);
        continue;
      }
      const eq = a.indexOf('=');
      if (eq > 0) this.flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) this.flags.set(a.slice(2), argv[++i]);
      else this.flags.set(a.slice(2), 'true');
    }
  }

  private raw(name: string, envName?: string): string | undefined {
    this.used.add(name);
    const flag = this.flags.get(name);
    if (flag !== undefined) return flag;
    const e = this.env[envName ?? name.toUpperCase().replace(/-/g, '_')];
    return e === undefined || e === '' ? undefined : e;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  str(name: string, def: string, envName?: string): string {
    return this.raw(name, envName) ?? def;
  }

  optStr(name: string, envName?: string): string | undefined {
    return this.raw(name, envName);
  }

  num(name: string, def: number, envName?: string): number {
    const v = this.raw(name, envName);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
    return n;
  }

  bool(name: string, def = false, envName?: string): boolean {
    const v = this.raw(name, envName);
    if (v === undefined) return def;
    return ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
  }

  list(name: string, def: number[], envName?: string): number[] {
    const v = this.raw(name, envName);
    if (v === undefined) return def;
    const out = v.split(',').map((x) => Number(x.trim()));
    if (out.some((n) => !Number.isFinite(n))) throw new Error(`--${name} must be a comma-separated list of numbers`);
    return out;
  }

  /** Flags given on the command line that no scenario read (typos). */
  unknown(): string[] {
    return [...this.flags.keys()].filter((k) => !this.used.has(k));
  }
}
