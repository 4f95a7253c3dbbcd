export type DevServiceErrorCode =
  | 'REDIS_NOT_INSTALLED'
  | 'REDIS_START_FAILED'
  | 'POSTGRES_NOT_AVAILABLE'
  | 'POSTGRES_DIR_UNREACHABLE'
  | 'POSTGRES_IN_USE'
  | 'POSTGRES_START_FAILED'
  | 'MAIL_CATCHER_START_FAILED';

/** Something kept an embedded dev service from starting; the message says what the user can do. */
export class DevServiceError extends Error {
  constructor(
    readonly code: DevServiceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DevServiceError';
  }
}
