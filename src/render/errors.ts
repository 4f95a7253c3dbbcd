export type TemplateErrorCode =
  | 'template_missing'
  | 'partial_missing'
  | 'front_matter_invalid'
  | 'mjml_invalid'
  | 'handlebars_invalid'
  | 'unknown_helper';

export interface TemplateErrorInfo {
  code: TemplateErrorCode;
  file: string;
  line: number;
  column?: number;
  message: string;
}

/** A template that cannot be compiled: the author must fix the file at `file:line`. */
export class TemplateError extends Error implements TemplateErrorInfo {
  readonly code: TemplateErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  /** Further problems found in the same pass, so one `nurture validate` run lists them all. */
  readonly others: TemplateErrorInfo[];

  constructor(info: TemplateErrorInfo, others: TemplateErrorInfo[] = []) {
    super(`${info.file}:${info.line}${info.column ? `:${info.column}` : ''} ${info.message}`);
    this.name = 'TemplateError';
    this.code = info.code;
    this.file = info.file;
    this.line = info.line;
    if (info.column !== undefined) this.column = info.column;
    this.others = others;
  }

  static fromList(infos: TemplateErrorInfo[]): TemplateError {
    const [first, ...others] = infos;
    if (!first) throw new Error('TemplateError.fromList needs at least one error');
    return new TemplateError(first, others);
  }
}

export type RenderErrorCode = 'missing_value' | 'header_injection' | 'render_failed';

/** A message that must not go out for this recipient; the send is held, not retried. */
export class RenderError extends Error {
  readonly code: RenderErrorCode;
  readonly field: string | null;

  constructor(code: RenderErrorCode, field: string | null, message: string) {
    super(message);
    this.name = 'RenderError';
    this.code = code;
    this.field = field;
  }
}
