import type { KeyRole } from './tokens.js';

/** Who is calling: resolved from the API key by the auth middleware, passed to services. */
export interface Principal {
  keyId: string;
  role: KeyRole;
  merchantId: string | null;
  memberId: string | null;
  /** Idempotency keys are unique within this scope: the merchant, the member, or the key itself. */
  scope: string;
  /** Set when the merchant or member the key acts for is suspended (the key may then only read, or nothing). */
  suspended?: 'merchant' | 'member';
}

/** A principal with the request it came with: what services record in the audit trail. */
export interface Caller {
  principal: Principal;
  requestId: string;
  ip: string | null;
}
