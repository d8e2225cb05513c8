/** Every error code the API can answer with, and the HTTP status each maps to. */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  AMOUNT_INVALID: 400,
  IDEMPOTENCY_KEY_REQUIRED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BINDING_PASSWORD_INVALID: 403,
  BINDING_LOCKED: 429,
  PAYMENT_REFERENCE_USED: 409,
  NOT_FOUND: 404,
  IDEMPOTENCY_KEY_REUSED: 409,
  CONFLICT: 409,
  /** Another member (not erased) has this phone or email (`details.field`). */
  MEMBER_EXISTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  UNAVAILABLE: 503,
  // Terminal business outcomes of operations (reported inside the operation, 422 when synchronous).
  INSUFFICIENT_BALANCE: 422,
  QR_EXPIRED_OR_INVALID: 422,
  CARD_NOT_ACTIVE: 422,
  CARD_EXPIRED: 422,
  VOUCHER_ALREADY_USED: 422,
  MEMBER_SUSPENDED: 422,
  MERCHANT_SUSPENDED: 422,
  PAYMENT_METHOD_REQUIRED: 422,
  RECHARGE_NOT_ALLOWED: 422,
  BALANCE_LIMIT_EXCEEDED: 422,
  ORIGINAL_TX_NOT_FOUND: 422,
  REFUND_EXCEEDS_AVAILABLE: 422,
  REFUND_WINDOW_EXPIRED: 422,
  LIMIT_EXCEEDED: 422,
  APPROVAL_REJECTED: 422,
  BINDING_LIMIT_REACHED: 422,
  TRANSFER_IN_PROGRESS: 422,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The codes an operation may end with (API.md "Terminal business errors" and "Operator money tools"). */
export const TERMINAL_OPERATION_CODES = [
  'INSUFFICIENT_BALANCE',
  'QR_EXPIRED_OR_INVALID',
  'CARD_NOT_ACTIVE',
  'CARD_EXPIRED',
  'VOUCHER_ALREADY_USED',
  'MEMBER_SUSPENDED',
  'MERCHANT_SUSPENDED',
  'PAYMENT_METHOD_REQUIRED',
  'RECHARGE_NOT_ALLOWED',
  'BALANCE_LIMIT_EXCEEDED',
  'ORIGINAL_TX_NOT_FOUND',
  'REFUND_EXCEEDS_AVAILABLE',
  'REFUND_WINDOW_EXPIRED',
  'LIMIT_EXCEEDED',
  'APPROVAL_REJECTED',
  'PAYMENT_REFERENCE_USED',
  'TRANSFER_IN_PROGRESS',
  'INTERNAL_ERROR',
] as const satisfies readonly ErrorCode[];

/**
 * The one error type of the application. `retryable` marks infrastructure trouble that a job
 * may retry; everything else is a final answer.
 */
export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly retryable = false,
    /** Overrides the code's usual status, e.g. MERCHANT_SUSPENDED refuses a key (403) where it usually ends an operation (422). */
    status?: number,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = status ?? ERROR_STATUS[code];
  }
}

export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
export const forbidden = (message = 'This key may not do that') => new AppError('FORBIDDEN', message);

/** A state machine step that does not apply to the current state (suspend twice, unfreeze an active card). */
export const conflict = (message: string, details?: Record<string, unknown>) => new AppError('CONFLICT', message, details);
