import type { TemplateDelegate } from 'handlebars';
import { collectTokenUses } from './ast.js';
import { TemplateError, type TemplateErrorInfo } from './errors.js';
import type { FrontMatter } from './front-matter.js';
import { BUILTIN_HELPER_NAMES, HELPER_NAMES, KNOWN_HELPERS, createHandlebars } from './helpers.js';
import { markTrackableLinks, type LinkSlot } from './links.js';
import { fileUnchanged, loadTemplateSource, templateVersion, type KnownFile, type TemplateSource } from './templates.js';
import { textSkeleton } from './text.js';
import { createTokenVault } from './tokens.js';

export interface CompiledTemplate {
  name: string;
  version: string;
  file: string;
  frontMatter: FrontMatter;
  /** MJML output with Handlebars tokens still in place (and link markers): what renderHtml was compiled from. */
  htmlTemplate: string;
  renderHtml: TemplateDelegate;
  renderSubject: TemplateDelegate;
  renderPreheader: TemplateDelegate;
  /**
   * The plain-text part, converted from the HTML once per version (text.ts textSkeleton) and compiled
   * without HTML escaping; null where it must be converted per message.
   */
  renderText: TemplateDelegate | null;
  /** Trackable links found in the HTML, with ids stable across recipients. */
  links: LinkSlot[];
  /** Fields printed bare in the subject: an empty one would read "Hi ," in the inbox, so the send is held. */
  subjectFields: string[];
  /** MJML warnings that did not block the compile (none today: every MJML error blocks). */
  warnings: TemplateErrorInfo[];
}

const hb = createHandlebars();
const HELPERS: ReadonlySet<string> = new Set([...HELPER_NAMES, ...BUILTIN_HELPER_NAMES]);
const HANDLEBARS_OPTIONS = { strict: true, knownHelpers: KNOWN_HELPERS, knownHelpersOnly: true } as const;
const MJML_ERROR = /^Line (\d+) of (.+?)(?:, included at .+)? \([^)]*\) — /;

/** Runs MJML once and prepares Handlebars; the result renders any number of recipients. */
export async function compileTemplate(source: TemplateSource): Promise<CompiledTemplate> {
  const pieces = handlebarsPieces(source);
  const problems = pieces.flatMap((piece) => checkHandlebars(piece));
  if (problems.length) throw TemplateError.fromList(problems);

  const vault = createTokenVault();
  const mjml2html = await loadMjml();
  let result: Awaited<ReturnType<typeof mjml2html>>;
  try {
    result = await mjml2html(source.body, {
      filePath: source.file,
      actualPath: source.file,
      includePath: source.templatesDir,
      ignoreIncludes: false,
      validationLevel: 'soft',
      keepComments: false,
      preprocessors: [(xml: string) => vault.protect(xml)],
    });
  } catch (error) {
    throw new TemplateError({ code: 'mjml_invalid', file: source.file, line: source.bodyLine, message: `MJML failed: ${(error as Error).message}` });
  }
  if (result.errors.length) throw TemplateError.fromList(result.errors.map((e) => mjmlErrorInfo(source, e)));

  const dropped = vault.missingFrom(result.html);
  if (dropped.length) {
    throw TemplateError.fromList(dropped.map((token) => ({
      code: 'mjml_invalid' as const,
      ...locateText(source, token),
      message: `MJML dropped ${token}: put tokens and {{#if}} blocks inside mj-text, mj-button, mj-raw or an attribute`,
    })));
  }

  const marked = markTrackableLinks(result.html, vault, source.frontMatter.links);
  const htmlTemplate = vault.restore(marked.html);
  const renderHtml = compileHandlebars(htmlTemplate, source, 'body');
  const skeleton = textSkeleton(marked.html, vault.tokens, (text) => vault.restore(text));
  const subjectUses = collectTokenUses(hb.parse(source.frontMatter.subject), HELPERS);

  return {
    name: source.name,
    version: templateVersion(source),
    file: source.file,
    frontMatter: source.frontMatter,
    htmlTemplate,
    renderHtml,
    // Subject and preheader are plain text headers, not HTML: escaping would put "&amp;" in the inbox.
    renderSubject: compileHandlebars(source.frontMatter.subject, source, 'subject', true),
    renderPreheader: compileHandlebars(source.frontMatter.preheader, source, 'preheader', true),
    renderText: skeleton === null ? null : compileHandlebars(skeleton, source, 'body', true),
    links: marked.slots,
    subjectFields: [...new Set(subjectUses.fields.filter((u) => u.output && !u.withFallback && !u.guarded).map((u) => u.field))],
    warnings: [],
  };
}

type Mjml = typeof import('mjml');
let mjml: Promise<Mjml> | null = null;
/** MJML (about 60 MB once loaded) only for processes that compile: the API, a fan-out or the CLI may never. */
function loadMjml(): Promise<Mjml> {
  return (mjml ??= import('mjml').then((m) => (m as unknown as { default: Mjml }).default));
}

const versions = new WeakMap<TemplateSource, string>();
/** A source's version, hashed once per loaded source. */
function versionOf(source: TemplateSource): string {
  let v = versions.get(source);
  if (!v) versions.set(source, (v = templateVersion(source)));
  return v;
}

/** Long enough for any filesystem's timestamp granularity (FAT's is two seconds; ext4's a kernel tick). */
const SETTLED_MS = 2000;

/** Compiles each (name, version) once; a changed template or partial gets a new version and a fresh compile. */
export class TemplateCache {
  private readonly entries = new Map<string, { version: string; compiled: Promise<CompiledTemplate> }>();
  /** The source last loaded per (folder, name), with the files it was made from as they were read. */
  private readonly sources = new Map<string, { source: TemplateSource; files: KnownFile[] }>();

  private readonly settledNs: bigint;

  /** `settledAfterMs`: how long a file must have been left alone before its stat alone vouches for it. */
  constructor(
    private readonly compile: (source: TemplateSource) => Promise<CompiledTemplate> = compileTemplate,
    opts: { settledAfterMs?: number } = {},
  ) {
    this.settledNs = BigInt(opts.settledAfterMs ?? SETTLED_MS) * 1_000_000n;
  }

  get(source: TemplateSource): Promise<CompiledTemplate> {
    const version = versionOf(source);
    const cached = this.entries.get(source.name);
    if (cached?.version === version) return cached.compiled;
    // Store the promise, not the result, so concurrent sends of a new version share one compile.
    const compiled = this.compile(source);
    this.entries.set(source.name, { version, compiled });
    compiled.catch(() => {
      if (this.entries.get(source.name)?.compiled === compiled) this.entries.delete(source.name);
    });
    return compiled;
  }

  /**
   * The compiled template `name` as it is on disk now, for a send. Per send it only looks at the files
   * the last version was made of (the template and its partials): the front matter is parsed, the
   * includes collected and the version hashed only when one of them changed, so an edit still takes
   * effect on the next send while an unchanged template costs a stat per file (see fileUnchanged()).
   */
  async load(templatesDir: string, name: string): Promise<CompiledTemplate> {
    const key = `${templatesDir}\0${name}`;
    const known = this.sources.get(key);
    if (known && known.files.every((f) => fileUnchanged(f, this.settledNs))) return this.get(known.source);
    const source = loadTemplateSource(templatesDir, name);
    const files = [{ path: source.file, text: source.text }, ...source.includes].map((f) => ({ ...f, stamp: null }));
    this.sources.set(key, { source, files });
    return this.get(source);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface HandlebarsPiece {
  text: string;
  file: string;
  /** File line of the piece's first line. */
  firstLine: number;
}

/** Every piece of Handlebars text a template is made of, with where it sits in which file. */
export function handlebarsPieces(source: TemplateSource): HandlebarsPiece[] {
  const keyLine = (key: string) => source.keyLines[key] ?? 2;
  return [
    { text: source.frontMatter.subject, file: source.file, firstLine: keyLine('subject') },
    { text: source.frontMatter.preheader, file: source.file, firstLine: keyLine('preheader') },
    { text: source.body, file: source.file, firstLine: source.bodyLine },
    ...source.includes.map((include) => ({ text: include.text, file: include.path, firstLine: 1 })),
  ];
}

export function parseHandlebars(text: string): unknown {
  return hb.parse(text);
}

function checkHandlebars(piece: HandlebarsPiece): TemplateErrorInfo[] {
  let program: unknown;
  try {
    program = hb.parse(piece.text);
  } catch (error) {
    const line = /line (\d+)/i.exec((error as Error).message)?.[1];
    return [{
      code: 'handlebars_invalid',
      file: piece.file,
      line: piece.firstLine + (line ? Number(line) - 1 : 0),
      message: (error as Error).message.split('\n').filter(Boolean).join(' '),
    }];
  }
  return collectTokenUses(program, HELPERS).helpers
    .filter((use) => use.partial || !HELPERS.has(use.name))
    .map((use) => ({
      code: 'unknown_helper' as const,
      file: piece.file,
      line: piece.firstLine + use.line - 1,
      column: use.column,
      message: use.partial
        ? `Handlebars partials ({{> ${use.name}}}) are not used here: include shared markup with <mj-include>`
        : `unknown helper "${use.name}" (known: ${HELPER_NAMES.join(', ')})`,
    }));
}

function compileHandlebars(text: string, source: TemplateSource, what: string, noEscape = false): TemplateDelegate {
  const options = { ...HANDLEBARS_OPTIONS, noEscape };
  try {
    // Handlebars compiles lazily on first render; precompiling here surfaces errors at compile time instead.
    hb.precompile(text, options);
  } catch (error) {
    throw new TemplateError({ code: 'handlebars_invalid', file: source.file, line: source.keyLines[what] ?? source.bodyLine, message: `${what}: ${(error as Error).message}` });
  }
  return hb.compile(text, options);
}

function mjmlErrorInfo(source: TemplateSource, error: { line: number; message: string; formattedMessage: string }): TemplateErrorInfo {
  const where = MJML_ERROR.exec(error.formattedMessage);
  const file = where?.[2];
  const line = Number(where?.[1] ?? error.line) || 1;
  const message = error.message.replace(/NRTOK\d+\s*KOTRN/g, '{{…}}');
  if (file && file !== source.file && source.includes.some((include) => include.path === file)) {
    return { code: 'mjml_invalid', file, line, message };
  }
  return { code: 'mjml_invalid', file: source.file, line: line + source.bodyLine - 1, message };
}

function locateText(source: TemplateSource, text: string): { file: string; line: number } {
  const index = source.body.indexOf(text);
  if (index >= 0) return { file: source.file, line: source.bodyLine + source.body.slice(0, index).split('\n').length - 1 };
  for (const include of source.includes) {
    const at = include.text.indexOf(text);
    if (at >= 0) return { file: include.path, line: include.text.slice(0, at).split('\n').length };
  }
  return { file: source.file, line: source.bodyLine };
}
