import { FALLBACK_HELPERS } from './helpers.js';

/** The parts of the Handlebars AST we read; the library's own typings are global and loosely shaped. */
interface Loc { start: { line: number; column: number } }
interface Node { type: string; loc?: Loc }
interface PathNode extends Node { type: 'PathExpression'; data: boolean; depth: number; parts: string[]; original: string }
interface CallNode extends Node { path: Node; params: Node[]; hash?: { pairs: { key: string; value: Node }[] } }
interface BlockNode extends CallNode { program?: ProgramNode; inverse?: ProgramNode }
interface ProgramNode extends Node { body: Node[] }
interface PartialNode extends Node { name: Node }

export interface FieldUse {
  field: string;
  line: number;
  /** 1-based. */
  column: number;
  /** Printed into the message directly, or as the value of upper/lower/capitalize/date. */
  output: boolean;
  /** Passed through default/firstName with a fallback. */
  withFallback: boolean;
  /** Inside {{#if field}} (or with/unless equivalents), so an empty value is already handled. */
  guarded: boolean;
}

export interface HelperUse {
  name: string;
  line: number;
  column: number;
  partial: boolean;
}

export interface TokenUses {
  fields: FieldUse[];
  helpers: HelperUse[];
}

/** Helpers whose first argument is printed, so an empty value shows as a gap. */
const PRINTING_HELPERS = new Set(['upper', 'lower', 'capitalize', 'date']);
const GUARDING_BLOCKS = new Set(['if', 'with', 'unless']);

interface Scope {
  guards: string[];
  /** Set inside {{#with x}}: relative paths resolve under x. */
  base: string | null;
  /** Set inside {{#each}}: relative paths are per item and cannot be checked against the context. */
  opaque: boolean;
}

export function collectTokenUses(program: unknown, helperNames: ReadonlySet<string>): TokenUses {
  const uses: TokenUses = { fields: [], helpers: [] };
  walkProgram(program as ProgramNode, { guards: [], base: null, opaque: false }, uses, helperNames);
  return uses;
}

function walkProgram(program: ProgramNode | undefined, scope: Scope, uses: TokenUses, helperNames: ReadonlySet<string>): void {
  for (const node of program?.body ?? []) walkStatement(node, scope, uses, helperNames);
}

function walkStatement(node: Node, scope: Scope, uses: TokenUses, helperNames: ReadonlySet<string>): void {
  switch (node.type) {
    case 'MustacheStatement':
    case 'SubExpression':
      walkCall(node as CallNode, scope, uses, helperNames, node.type === 'MustacheStatement');
      return;
    case 'BlockStatement':
    case 'DecoratorBlock':
      walkBlock(node as BlockNode, scope, uses, helperNames);
      return;
    case 'PartialStatement':
    case 'PartialBlockStatement': {
      const name = (node as PartialNode).name;
      uses.helpers.push({ name: name.type === 'PathExpression' ? (name as PathNode).original : '(dynamic)', ...position(node), partial: true });
      return;
    }
    default:
      return;
  }
}

function walkCall(call: CallNode, scope: Scope, uses: TokenUses, helperNames: ReadonlySet<string>, printed: boolean): void {
  if (call.path.type !== 'PathExpression') return;
  const path = call.path as PathNode;
  const hashValues = call.hash?.pairs.map((pair) => pair.value) ?? [];
  const isCall = call.params.length > 0 || hashValues.length > 0 || helperNames.has(path.original);
  if (!isCall) {
    recordField(path, scope, uses, { output: printed, withFallback: false });
    return;
  }
  uses.helpers.push({ name: path.original, ...position(path), partial: false });
  if (path.original === 'firstName') {
    uses.fields.push({ field: 'lead.firstName', ...position(path), output: printed, withFallback: true, guarded: false });
  }
  const hasFallback = FALLBACK_HELPERS.has(path.original) && call.params.length > 1;
  call.params.forEach((param, index) => {
    const first = index === 0;
    walkExpression(param, scope, uses, helperNames, {
      output: printed && first && (PRINTING_HELPERS.has(path.original) || hasFallback),
      withFallback: first && hasFallback,
    });
  });
  for (const value of hashValues) walkExpression(value, scope, uses, helperNames, { output: false, withFallback: false });
}

function walkBlock(block: BlockNode, scope: Scope, uses: TokenUses, helperNames: ReadonlySet<string>): void {
  walkCall({ ...block, type: 'SubExpression' }, scope, uses, helperNames, false);
  const name = block.path.type === 'PathExpression' ? (block.path as PathNode).original : '';
  const subject = block.params[0]?.type === 'PathExpression' ? resolve(block.params[0] as PathNode, scope) : null;
  const guarded = GUARDING_BLOCKS.has(name) && subject ? [...scope.guards, subject] : scope.guards;
  const programScope: Scope =
    name === 'each' ? { ...scope, opaque: true }
    : name === 'with' && subject ? { guards: guarded, base: subject, opaque: scope.opaque }
    : { ...scope, guards: name === 'unless' ? scope.guards : guarded };
  walkProgram(block.program, programScope, uses, helperNames);
  walkProgram(block.inverse, name === 'unless' ? { ...scope, guards: guarded } : scope, uses, helperNames);
}

function walkExpression(node: Node, scope: Scope, uses: TokenUses, helperNames: ReadonlySet<string>, how: { output: boolean; withFallback: boolean }): void {
  if (node.type === 'SubExpression') walkCall(node as CallNode, scope, uses, helperNames, false);
  else if (node.type === 'PathExpression') recordField(node as PathNode, scope, uses, how);
}

function recordField(path: PathNode, scope: Scope, uses: TokenUses, how: { output: boolean; withFallback: boolean }): void {
  const field = resolve(path, scope);
  if (field === null) return;
  const guarded = scope.guards.some((guard) => field === guard || field.startsWith(`${guard}.`));
  uses.fields.push({ field, ...position(path), ...how, guarded });
}

/** The context field a path names, or null when it cannot be known statically (@index, this inside each). */
function resolve(path: PathNode, scope: Scope): string | null {
  if (path.data) return path.original.startsWith('@root.') ? path.original.slice('@root.'.length) : null;
  if (path.parts.length === 0) return null;
  const joined = path.parts.join('.');
  if (path.depth > 0) return joined;
  if (scope.opaque) return null;
  return scope.base ? `${scope.base}.${joined}` : joined;
}

function position(node: Node): { line: number; column: number } {
  return { line: node.loc?.start.line ?? 1, column: (node.loc?.start.column ?? 0) + 1 };
}
