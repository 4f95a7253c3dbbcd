// YAML with source positions: parse once, then map any path in the data back to a line and column.
import { isCollection, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLError, type YAMLMap } from 'yaml';
import type { ConfigIssue } from './issues.js';

export interface PositionedYaml {
  file: string;
  /** The parsed data; undefined when the file has a syntax error that makes its structure a guess. */
  data: unknown;
  /**
   * Line and column of the node at `path`, or of its closest existing ancestor (so a missing key
   * points at the mapping it is missing from). With `key`, the position of the last segment's key.
   */
  at(path: readonly PropertyKey[], opts?: { key?: boolean }): { line: number; column: number };
  /** Keys present in the mapping at `path`, in file order ([] when there is no mapping there). */
  keysAt(path: readonly PropertyKey[]): string[];
  syntaxIssues: ConfigIssue[];
}

export function parseYaml(file: string, text: string): PositionedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const position = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const lines = text.split(/\r?\n/);
  const issue = (offset: number, code: string, message: string, severity: ConfigIssue['severity'] = 'error'): ConfigIssue => ({
    file,
    ...position(offset),
    code,
    message,
    severity,
  });

  // Duplicate keys are reported by our own walk (with the earlier line); the rest is the parser's, made specific.
  const syntaxIssues: ConfigIssue[] = duplicateKeys(doc).map(({ key, offset, first }) =>
    issue(offset, 'duplicate_key', `duplicate key "${key}": it is already set on line ${position(first).line}; a key may appear once per mapping`),
  );
  // A "__proto__" key would be dropped without a word by the schema (it is no name of ours): say so.
  for (const offset of protoKeys(doc)) syntaxIssues.push(issue(offset, 'reserved_name', 'the key "__proto__" is a reserved name (a property every JavaScript object has): choose another'));
  // Only the first structural error: once the structure is broken, what the parser says after it
  // (a tab's or an unclosed bracket's dozen follow-on errors) mostly follows from it.
  const broken = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY').sort((a, b) => a.pos[0] - b.pos[0]);
  if (broken.length) {
    const first = describeYamlError(broken[0]!, doc, lines, issue);
    const more = broken.length - 1;
    syntaxIssues.push(more ? { ...first, message: `${first.message} (the parser then reports ${more} more error${more === 1 ? '' : 's'}, which may follow from this one: fix it first)` } : first);
  }
  for (const w of doc.warnings) syntaxIssues.push(issue(w.pos[0], 'yaml_warning', plainMessage(w), 'warning'));

  // A duplicate key alone leaves the structure intact, so the rest of the file can still be checked.
  const structural = doc.errors.some((e) => e.code !== 'DUPLICATE_KEY');
  const at = (path: readonly PropertyKey[], opts: { key?: boolean } = {}) => position(offsetOf(doc, path, opts.key ?? false));
  const keysAt = (path: readonly PropertyKey[]) => {
    const node = nodeAt(doc, path);
    return isMap(node) ? node.items.flatMap((p) => (isScalar(p.key) ? [String(p.key.value)] : [])) : [];
  };
  return { file, data: structural ? undefined : doc.toJS(), at, keysAt, syntaxIssues };
}

function plainMessage(e: YAMLError): string {
  // prettyErrors appends " at line L, column C:" and a code excerpt; the issue carries its own position.
  return e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function describeYamlError(
  e: YAMLError,
  doc: Document,
  lines: string[],
  issue: (offset: number, code: string, message: string) => ConfigIssue,
): ConfigIssue {
  const message = plainMessage(e);
  const offset = e.pos[0];
  // An unclosed quote or bracket is only noticed at the end of the file: point at where it opens.
  if (/^Missing closing ["']/.test(message)) {
    const q = message.includes('"') ? '"' : "'";
    const open = nodeEndingAt(doc, offset, (n) => isScalar(n) && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE'));
    return issue(open ?? offset, 'yaml_syntax', `unclosed quote: expected a closing ${q} for the string that starts here`);
  }
  const flow = /^Flow (sequence|map) in block collection/.exec(message);
  if (flow) {
    const [o, c] = flow[1] === 'sequence' ? ['[', ']'] : ['{', '}'];
    const open = nodeEndingAt(doc, offset, (n) => isCollection(n) && n.flow === true);
    return issue(open ?? offset, 'yaml_syntax', `unclosed ${o}: expected a closing ${c} for the ${flow[1] === 'sequence' ? 'list' : 'mapping'} that starts here`);
  }
  const { line, col } = e.linePos?.[0] ?? { line: 1, col: 1 };
  const text = lines[line - 1] ?? '';
  const indent = text.length - text.trimStart().length;
  // The parser reports indentation problems at column 1; the offending text starts at its first non-space.
  const start = offset + (col === 1 ? indent : 0);
  if (e.code === 'BAD_INDENT' || message.startsWith('Sequence item without - indicator')) {
    const above = previousIndent(lines, line - 1);
    const what = text.trim().split(/\s/)[0] ?? '';
    const expected = above === null ? '' : `, but the line above is indented ${above}`;
    return issue(start, 'yaml_indent', `bad indentation: "${what}" is indented ${indent} space${indent === 1 ? '' : 's'}${expected}; keys of one mapping must start in the same column`);
  }
  if (e.code === 'TAB_AS_INDENT') return issue(col === 1 ? offset + Math.max(0, text.indexOf('\t')) : start, 'yaml_syntax', 'a tab used for indentation: YAML expects spaces');
  // "type wait": a key and its value without the colon between them.
  const words = /^([A-Za-z_][\w-]*)\s+(\S.*)$/.exec(text.trim());
  if (/^Implicit (map )?keys? need/.test(message) && words && !text.includes(':')) {
    return issue(start, 'yaml_syntax', `expected a colon after "${words[1]}": write "${words[1]}: ${words[2]}" (a key and its value are separated by ": ")`);
  }
  return issue(start, 'yaml_syntax', message);
}

/** Indentation of the nearest line above `index` (0-based) that holds content. */
function previousIndent(lines: string[], index: number): number | null {
  for (let i = index - 1; i >= 0; i--) {
    const l = lines[i]!;
    const t = l.trim();
    if (t === '' || t.startsWith('#')) continue;
    return l.length - l.trimStart().length;
  }
  return null;
}

function nodeEndingAt(doc: Document, offset: number, match: (n: Node) => boolean): number | null {
  let found: number | null = null;
  visit(doc, (_key, n) => {
    if (isPair(n) || found !== null) return;
    const node = n as Node;
    if (node.range && node.range[1] >= offset && node.range[0] < offset && match(node)) found = node.range[0];
  });
  return found;
}

function duplicateKeys(doc: Document): { key: string; offset: number; first: number }[] {
  const out: { key: string; offset: number; first: number }[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Map<string, number>();
      for (const p of map.items) {
        if (!isScalar(p.key)) continue;
        const k = String(p.key.value);
        const offset = p.key.range?.[0] ?? 0;
        const first = seen.get(k);
        if (first === undefined) seen.set(k, offset);
        else out.push({ key: k, offset, first });
      }
    },
  });
  return out.sort((a, b) => a.offset - b.offset);
}

function protoKeys(doc: Document): number[] {
  const out: number[] = [];
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && String(pair.key.value) === '__proto__') out.push(pair.key.range?.[0] ?? 0);
    },
  });
  return out.sort((a, b) => a - b);
}

/** With duplicate keys, the pair that counts is the last one, as toJS() reads it. */
function pairOf(map: YAMLMap, seg: PropertyKey): Pair | undefined {
  for (let i = map.items.length - 1; i >= 0; i--) {
    const p = map.items[i]!;
    if (isScalar(p.key) && String(p.key.value) === String(seg)) return p;
  }
  return undefined;
}

function nodeAt(doc: Document, path: readonly PropertyKey[]): Node | null {
  let node: Node | null = doc.contents as Node | null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = pairOf(node, seg);
      if (!pair) return null;
      node = (pair.value as Node | null) ?? null;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = (node.items[seg] as Node | undefined) ?? null;
    } else {
      return null;
    }
  }
  return node;
}

function offsetOf(doc: Document, path: readonly PropertyKey[], wantKey: boolean): number {
  let node: Node | null = doc.contents as Node | null;
  let offset = node?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isMap(node)) {
      const pair = pairOf(node, seg);
      if (!pair) break;
      const last = i === path.length - 1;
      if (last && wantKey && isScalar(pair.key)) return pair.key.range?.[0] ?? offset;
      node = (pair.value as Node | null) ?? null;
      // `key:` with nothing after it has no value node: point at the key.
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
