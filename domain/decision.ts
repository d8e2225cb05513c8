import type { ErrorCode } from './errors.js';

/** A business refusal, decided without I/O: the code the operation ends with and its message. */
export interface Refusal {
  refused: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export const refusal = (refused: ErrorCode, message: string, details?: Record<string, unknown>): Refusal => (details ? { refused, message, details } : { refused, message });

export const isRefusal = <T extends object>(decision: T | Refusal): decision is Refusal => 'refused' in decision;
