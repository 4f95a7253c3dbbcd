// YAML with source positions: parse once, then map any path in the data back to a line and column.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from './issues.js';

export interface PositionedYaml {
  file: string;
  data: unknown;
  /** Line and column of the node at `path`, or of its closest existing ancestor. */
  at(path: readonly PropertyKey[], opts?: { key?: boolean }): { line: number; column: number };
  syntaxIssues: ConfigIssue[];
}

export function parseYaml(file: string, text: string): PositionedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const syntaxIssues: ConfigIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    file,
    line: e.linePos?.[0]?.line ?? 1,
    column: e.linePos?.[0]?.col ?? 1,
    code: e.code === 'DUPLICATE_KEY' ? 'duplicate_key' : 'yaml_syntax',
    message: e.message.split('\n')[0]!,
    severity: doc.errors.includes(e as never) ? 'error' : 'warning',
  }));
  const at = (path: readonly PropertyKey[], opts: { key?: boolean } = {}) => {
    const offset = offsetOf(doc, path, opts.key ?? false);
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  return { file, data: doc.errors.length ? undefined : doc.toJS(), at, syntaxIssues };
}

function offsetOf(doc: Document, path: readonly PropertyKey[], wantKey: boolean): number {
  let node: Node | null = doc.contents as Node | null;
  let offset = node?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      if (last && wantKey && isScalar(pair.key)) return pair.key.range?.[0] ?? offset;
      node = (pair.value as Node | null) ?? null;
      offset = node?.range?.[0] ?? (isScalar(pair.key) ? (pair.key.range?.[0] ?? offset) : offset);
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}
