import type { Principal } from '../domain/principal.js';

export type { Principal };

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    principal?: Principal;
  }
}
