/** Plain-text and Markdown tables for benchmark output, plus number formatting. */

export type Cell = string | number | null | undefined;

function cellText(c: Cell): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'number') return fmtNum(c);
  return c;
}

const isNumeric = (s: string) => /^[-+]?[\d,.]+(?:\s?[%a-zA-Zµ/]+)?$/.test(s.trim()) || s === '-' || s === 'n/a';

/** A fixed-width text table: numbers right-aligned, text left-aligned. */
export function formatTable(headers: string[], rows: Cell[][], title?: string): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const right = headers.map((_, i) => text.length > 0 && text.every((r) => r[i] === '' || isNumeric(r[i])));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...text.map(line)];
  return (title ? `${title}\n` : '') + out.join('\n');
}

/** The same table as GitHub Markdown. */
export function markdownTable(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i]).replace(/\|/g, '\\|')));
  const right = headers.map((_, i) => text.length > 0 && text.every((r) => r[i] === '' || isNumeric(r[i])));
  return [
    `| ${headers.join(' | ')} |`,
    `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`,
    ...text.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** 1234567 → "1,234,567"; 12.345 → "12.3"; 0.01234 → "0.0123". */
export function fmtNum(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? '-' : String(n);
  if (digits !== undefined) return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const a = Math.abs(n);
  if (Number.isInteger(n) || a >= 100) return Math.round(n).toLocaleString('en-US');
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${(ms * 1000).toFixed(0)} µs`;
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  const a = Math.abs(b);
  if (a >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (a >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  if (a >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${Math.round(b)} B`;
}

export function fmtPct(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '-';
  // Never round a shortfall up to 100 %: 99.9996 % shows as 99.99 %, only exactly 1 as 100 %.
  if (x < 1 && x > 0.99) return `${(Math.floor(x * 10 ** (digits + 2)) / 10 ** digits).toFixed(digits)} %`;
  return `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : digits)} %`;
}
