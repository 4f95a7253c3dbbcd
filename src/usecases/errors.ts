// One error type for every use case: a stable code, the field at fault, and a message a person can act on.
export type UseCaseErrorCode =
  | 'invalid_field'
  | 'invalid_email'
  | 'unknown_persona'
  | 'unknown_stage'
  | 'unknown_sequence'
  | 'unknown_event'
  | 'unknown_lead'
  | 'unknown_account'
  | 'unknown_message'
  | 'not_suppressed'
  | 'suppressed'
  | 'nothing_deferred'
  | 'not_segmented'
  | 'unknown_template'
  | 'erased'
  | 'invalid_csv'
  | 'invalid_mapping';

const STATUS: Record<UseCaseErrorCode, number> = {
  invalid_field: 422,
  invalid_email: 422,
  unknown_persona: 422,
  unknown_stage: 422,
  unknown_sequence: 404,
  unknown_event: 404,
  unknown_lead: 404,
  unknown_account: 404,
  unknown_message: 404,
  not_suppressed: 409,
  suppressed: 409,
  nothing_deferred: 409,
  unknown_template: 404,
  not_segmented: 422,
  erased: 409,
  invalid_csv: 400,
  invalid_mapping: 422,
};

export class UseCaseError extends Error {
  readonly status: number;
  constructor(readonly code: UseCaseErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'UseCaseError';
    this.status = STATUS[code];
  }
}
