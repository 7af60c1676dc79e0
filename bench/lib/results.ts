import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';
import { machineInfo, type Machine } from './machine.js';
import { markdownTable, type Cell } from './table.js';

export const RESULTS_DIR = join(projectRoot, 'bench', 'results');

export interface ResultTable {
  title: string;
  headers: string[];
  rows: Cell[][];
}

export interface BenchResult {
  kind: 'load' | 'micro';
  scenario: string;
  startedAt: string;
  command: string;
  /** The server code measured: git commit, +dirty when src/ or migrations/ differ from it. */
  code: string;
  machine: Machine;
  tables: ResultTable[];
  /** Lines shown under the tables (setup, connect, memory, CPU). */
  notes: string[];
  /** Everything else, machine-readable. */
  data: unknown;
}

/** ISO time usable in a file name on any OS: 2025-11-28T06-12-00Z. */
export function fileStamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/** Read-only git queries: which server code these figures belong to. */
export function codeVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src', 'migrations') !== '';
    return `${commit}${dirty ? '+dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** Taken when the bench starts: the code that was built and measured, not what the tree holds later. */
const CODE_AT_START = codeVersion();

export function commandLine(): string {
  const script = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event} --` : `node ${process.argv[1]}`;
  return `${script} ${process.argv.slice(2).join(' ')}`.trim();
}

/** Writes bench/results/<scenario>-<stamp>.json and appends a section to bench/results/latest.md. */
export function saveResult(r: Omit<BenchResult, 'machine' | 'startedAt' | 'command' | 'code'> & { startedAt?: Date }): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = r.startedAt ?? new Date();
  const full: BenchResult = {
    ...r,
    startedAt: started.toISOString(),
    command: commandLine(),
    code: CODE_AT_START,
    machine: machineInfo(),
  };
  const file = join(RESULTS_DIR, `${r.scenario}-${fileStamp(started)}.json`);
  writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  const md = join(RESULTS_DIR, 'latest.md');
  if (!existsSync(md)) {
    writeFileSync(md, '# Benchmark results\n\nAppended by `npm run bench` and `npm run bench:micro`; newest at the bottom. Raw data: the JSON files next to this one.\n');
  }
  const m = full.machine;
  const section = [
    '',
    `## ${r.scenario} — ${full.startedAt}`,
    '',
    `\`${full.command}\` · code ${full.code} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, load avg ${m.loadavg1} · [json](${file.split('/').pop()})`,
    '',
    ...r.tables.flatMap((t) => [`**${t.title}**`, '', markdownTable(t.headers, t.rows), '']),
    ...r.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  appendFileSync(md, section);
  return file;
}
