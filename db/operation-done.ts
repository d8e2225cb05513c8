import type { OperationRecord } from './queries/operations.js';

/** Redis channel on which workers announce, after commit, that an operation reached a terminal state. */
export const operationDoneChannel = (prefix: string) => `${prefix}:op-done`;

/** What a worker announces: the committed terminal operation, as much as an API answer shows of it. */
export type AnnouncedOperation = Pick<OperationRecord, 'id' | 'type' | 'status' | 'created_at' | 'completed_at' | 'error_code' | 'error_message' | 'result'>;

/** One message for the operations one transaction ended (a worker's batch). */
export function announcement(ops: OperationRecord[]): string {
  return JSON.stringify(
    ops.map(({ id, type, status, created_at, completed_at, error_code, error_message, result }) => ({ id, type, status, created_at, completed_at, error_code, error_message, result }) satisfies AnnouncedOperation),
  );
}

/** The operations of a message: a list, or one operation (as workers before batching sent it). */
export function parseAnnouncement(message: string): AnnouncedOperation[] {
  try {
    const value = JSON.parse(message) as AnnouncedOperation | AnnouncedOperation[];
    return (Array.isArray(value) ? value : [value]).filter((op) => typeof op?.id === 'string');
  } catch {
    return [];
  }
}
