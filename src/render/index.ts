export { loadTemplateSource, templateVersion, type TemplateSource, type TemplateInclude } from './templates.js';
export { frontMatterSchema, RESERVED_LINK_IDS, type FrontMatter, type DeclaredLink } from './front-matter.js';
export { compileTemplate, TemplateCache, type CompiledTemplate } from './compile.js';
export { renderMessage, type RenderOptions, type RenderedMessage } from './render.js';
export { checkTemplate, type TemplateIssue, type TemplateIssueCode, type KnownFields } from './check.js';
export {
  CONTEXT_FIELDS, ALWAYS_SET_FIELDS, OPTIONAL_FIELDS,
  type RenderContext, type RenderLead, type RenderAccount, type RenderOwner, type RenderSender,
} from './context.js';
export { HELPER_NAMES, createHandlebars } from './helpers.js';
export type { MessageLink, LinkSlot } from './links.js';
export { TemplateError, RenderError, type TemplateErrorCode, type TemplateErrorInfo, type RenderErrorCode } from './errors.js';
