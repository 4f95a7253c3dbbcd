// Configuration problems are values: every one names the file, line and column and says what was expected.
export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  code: string;
  message: string;
  severity: 'error' | 'warning';
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly issues: ConfigIssue[]) {
    super(formatIssues(issues.filter((i) => i.severity === 'error')));
    this.name = 'ConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.severity}: ${i.message} [${i.code}]`;
}

export function formatIssues(issues: ConfigIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

/** "did you mean interest?" for a misspelt name, when one known name is close enough to be the obvious intent. */
export function suggest(input: string, known: Iterable<string>): string {
  const best = closest(input, known);
  return best === null ? '' : ` (did you mean ${best}?)`;
}

/** The known name nearest to `input`, if it is near enough to be an obvious typo; otherwise null. */
export function closest(input: string, known: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(input.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  if (best === null || (bestDistance === 0 && best === input) || bestDistance > maxTypos(input)) return null;
  return best;
}

// Two typos are plausible in a word, but not in a two-letter one: "eq" is not a misspelt "gt".
function maxTypos(input: string): number {
  return Math.min(input.length - 1, Math.max(2, Math.floor(input.length / 3)));
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
