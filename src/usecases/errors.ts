// One error type for every use case: a stable code, the field at fault, and a message a person can act on.
export type UseCaseErrorCode =
  | 'invalid_field'
  | 'invalid_email'
  | 'unknown_persona'
  | 'unknown_stage'
  | 'unknown_sequence'
  | 'unknown_event'
  | 'unknown_lead'
  | 'suppressed'
  | 'nothing_deferred'
  | 'unknown_template';

const STATUS: Record<UseCaseErrorCode, number> = {
  invalid_field: 422,
  invalid_email: 422,
  unknown_persona: 422,
  unknown_stage: 422,
  unknown_sequence: 404,
  unknown_event: 404,
  unknown_lead: 404,
  suppressed: 409,
  nothing_deferred: 409,
  unknown_template: 404,
};

export class UseCaseError extends Error {
  readonly status: number;
  constructor(readonly code: UseCaseErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'UseCaseError';
    this.status = STATUS[code];
  }
}
