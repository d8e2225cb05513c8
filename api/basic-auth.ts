import type { Request } from 'express';

/** The user and password of an `Authorization: Basic …` header; undefined when there is none or it is malformed. */
export function basicCredentials(req: Request): { user: string; password: string } | undefined {
  const encoded = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.get('authorization') ?? '')?.[1];
  if (!encoded) return undefined;
  const [user, password] = Buffer.from(encoded, 'base64').toString('utf8').split(/:(.*)/s);
  return user !== undefined && password !== undefined ? { user, password } : undefined;
}
