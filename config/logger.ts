import { pino, type Logger } from 'pino';

/**
 * Paths that may hold a secret anywhere in a logged object: QR tokens, API keys, binding
 * passwords, webhook secrets. Redaction is a safety net; code also avoids logging them.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  '*.authorization',
  'qr',
  '*.qr',
  'qr_plain',
  '*.qr_plain',
  'key',
  '*.key',
  'token',
  '*.token',
  'binding_password',
  '*.binding_password',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'body.qr',
  'body.binding_password',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'mps' } },
    destination as pino.DestinationStream | undefined,
  );
}

export type { Logger };
