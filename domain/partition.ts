import { createHash } from 'node:crypto';

/** Stable partition of a card: every operation of one card lands on the same queue. */
export function partitionOf(key: string, partitions: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % partitions;
}

/** partitionOf in SQL, of the text `keySql` evaluates to; binds the number of partitions. */
export const partitionSql = (keySql: string) => `(('x' || left(encode(sha256(convert_to(${keySql}, 'UTF8')), 'hex'), 8))::bit(32)::bigint % ?)`;
