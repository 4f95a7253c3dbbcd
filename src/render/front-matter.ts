import { LineCounter, parseDocument, isNode, type Node } from 'yaml';
import { z } from 'zod';
import { TemplateError, type TemplateErrorInfo } from './errors.js';

/** Link ids the renderer fills in itself; a template may not redeclare them. */
export const RESERVED_LINK_IDS = ['unsubscribe', 'preferences'] as const;

const fieldPath = z.string().regex(/^[A-Za-z_][\w]*(\.[A-Za-z_][\w-]*)+$/, 'must be a dotted field like lead.firstName');

export const declaredLinkSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, message: 'must be an absolute http(s) URL' }),
  tag: z.string().min(1).optional(),
});

export const frontMatterSchema = z.strictObject({
  subject: z.string().trim().min(1, 'subject must not be empty'),
  preheader: z.string().default(''),
  required: z.array(fieldPath).default([]),
  links: z
    .record(
      z.string().regex(/^[A-Za-z][\w-]*$/, 'link id must start with a letter'),
      declaredLinkSchema,
    )
    .default({})
    .refine((links) => RESERVED_LINK_IDS.every((id) => !(id in links)), {
      message: `links must not redeclare ${RESERVED_LINK_IDS.join(' or ')}; they come from the send`,
    }),
});

export type FrontMatter = z.infer<typeof frontMatterSchema>;
export type DeclaredLink = z.infer<typeof declaredLinkSchema>;

export interface SplitTemplate {
  frontMatter: FrontMatter;
  /** 1-based file line of each top-level front matter key, to point issues at the right line. */
  keyLines: Record<string, number>;
  body: string;
  bodyLine: number;
}

const FENCE = /^---[ \t]*$/;

/** Splits `---` YAML front matter from the MJML body and validates it. */
export function splitFrontMatter(file: string, text: string): SplitTemplate {
  const lines = text.split('\n');
  if (!FENCE.test(lines[0]?.replace(/\r$/, '') ?? '')) {
    throw new TemplateError({ code: 'front_matter_invalid', file, line: 1, column: 1, message: 'template must start with a --- front matter block' });
  }
  const closing = lines.findIndex((line, i) => i > 0 && FENCE.test(line.replace(/\r$/, '')));
  if (closing < 0) {
    throw new TemplateError({ code: 'front_matter_invalid', file, line: 1, column: 1, message: 'front matter is not closed by a --- line' });
  }
  const yamlText = lines.slice(1, closing).join('\n');
  const firstYamlLine = 2;
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: false });
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line + firstYamlLine - 1, column: pos.col };
  };

  if (doc.errors.length > 0) {
    throw TemplateError.fromList(
      doc.errors.map((e) => ({ code: 'front_matter_invalid', file, ...at(e.pos[0]), message: e.message.split('\n')[0] ?? e.message })),
    );
  }

  const parsed = frontMatterSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw TemplateError.fromList(
      parsed.error.issues.map((issue): TemplateErrorInfo => {
        const node = nearestNode(doc.getIn(issue.path as (string | number)[], true), doc, issue.path as (string | number)[]);
        const where = node?.range ? at(node.range[0]) : { line: firstYamlLine, column: 1 };
        const key = issue.path.length ? `${issue.path.join('.')}: ` : '';
        return { code: 'front_matter_invalid', file, ...where, message: `${key}${issue.message}` };
      }),
    );
  }

  const keyLines: Record<string, number> = {};
  for (const key of Object.keys(parsed.data)) {
    const node = doc.getIn([key], true);
    if (isNode(node) && node.range) keyLines[key] = at(node.range[0]).line;
  }

  return { frontMatter: parsed.data, keyLines, body: lines.slice(closing + 1).join('\n'), bodyLine: closing + 2 };
}

/** Zod reports a missing key at a path YAML has no node for; walk up to the closest node that exists. */
function nearestNode(node: unknown, doc: ReturnType<typeof parseDocument>, path: (string | number)[]): Node | null {
  if (isNode(node)) return node;
  for (let n = path.length - 1; n >= 0; n--) {
    const parent = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(parent)) return parent;
  }
  return null;
}
