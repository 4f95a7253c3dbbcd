import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TemplateError } from './errors.js';
import { splitFrontMatter, type FrontMatter } from './front-matter.js';

export interface TemplateInclude {
  /** Absolute path, as MJML resolves it. */
  path: string;
  text: string;
}

export interface TemplateSource {
  name: string;
  templatesDir: string;
  /** Absolute path of the .mjml file. */
  file: string;
  /** The whole file, front matter included. */
  text: string;
  frontMatter: FrontMatter;
  /** File line of each top-level front matter key (subject, preheader, …). */
  keyLines: Record<string, number>;
  body: string;
  /** File line where the MJML body starts, to map MJML and Handlebars lines back to the file. */
  bodyLine: number;
  /** Every partial reached through mj-include, transitively, in first-use order. */
  includes: TemplateInclude[];
}

const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]*$/i;
const INCLUDE_TAG = /<mj-include\b[^>]*?\bpath\s*=\s*(["'])(.*?)\1[^>]*>/g;

export function loadTemplateSource(templatesDir: string, name: string): TemplateSource {
  const dir = path.resolve(templatesDir);
  const file = path.join(dir, `${name}.mjml`);
  if (!TEMPLATE_NAME.test(name)) {
    throw new TemplateError({ code: 'template_missing', file, line: 1, message: `"${name}" is not a template name (letters, digits, - and _)` });
  }
  const text = readText(file);
  if (text === null) {
    throw new TemplateError({ code: 'template_missing', file, line: 1, message: `template "${name}" not found in ${dir}` });
  }
  const { frontMatter, keyLines, body, bodyLine } = splitFrontMatter(file, text);
  const includes: TemplateInclude[] = [];
  collectIncludes(file, body, bodyLine, includes, [file]);
  return { name, templatesDir: dir, file, text, frontMatter, keyLines, body, bodyLine, includes };
}

/** Changes when the template or any partial it includes changes, so a cached compile is never stale. */
export function templateVersion(source: Pick<TemplateSource, 'text' | 'includes' | 'templatesDir'>): string {
  const hash = createHash('sha256').update(source.text);
  for (const include of source.includes) {
    hash.update('\0').update(path.relative(source.templatesDir, include.path)).update('\0').update(include.text);
  }
  return hash.digest('hex').slice(0, 16);
}

function collectIncludes(fromFile: string, text: string, firstLine: number, into: TemplateInclude[], chain: string[]): void {
  for (const match of text.matchAll(INCLUDE_TAG)) {
    const target = path.resolve(path.dirname(fromFile), match[2] ?? '');
    const line = firstLine + countNewlines(text.slice(0, match.index));
    if (chain.includes(target)) {
      throw new TemplateError({ code: 'partial_missing', file: fromFile, line, message: `circular mj-include of ${target}` });
    }
    if (into.some((include) => include.path === target)) continue;
    const partial = readText(target);
    if (partial === null) {
      throw new TemplateError({ code: 'partial_missing', file: fromFile, line, message: `mj-include path "${match[2]}" not found (${target})` });
    }
    into.push({ path: target, text: partial });
    collectIncludes(target, partial, 1, into, [...chain, target]);
  }
}

export interface KnownFile {
  path: string;
  text: string;
  /** The file's stat when its text was last found unchanged, and whether that stat alone may vouch for it. */
  stamp: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint; settled: boolean } | null;
}

/**
 * Whether a file still holds the text it was made from. A stat that matches the last one vouches for it
 * once the file had been left alone for a while before its text was read (git's rule for "racily clean"
 * files): a write after that read moves its change time past the one recorded, whatever the filesystem's
 * timestamp granularity (ctime, which no tool restoring mtimes can set back). Otherwise the file is read and
 * compared, as it is right after an edit.
 */
export function fileUnchanged(file: KnownFile, settledNs: bigint): boolean {
  const st = statSync(file.path, { bigint: true, throwIfNoEntry: false });
  if (!st) return false;
  const same = file.stamp && file.stamp.ino === st.ino && file.stamp.size === st.size && file.stamp.mtimeNs === st.mtimeNs && file.stamp.ctimeNs === st.ctimeNs;
  if (same && file.stamp!.settled) return true;
  if (readText(file.path) !== file.text) return false;
  file.stamp = { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, settled: BigInt(Date.now()) * 1_000_000n - st.ctimeNs > settledNs };
  return true;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EISDIR') return null;
    throw error;
  }
}

export function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++;
  return count;
}
