import type { LocalStack } from '../../dev/stack.js';

/** Where the test run's Postgres and Redis are; set by the root hook before any test runs. */
export const testEnv: { databaseUrl: string; redisUrl: string; stack?: LocalStack } = { databaseUrl: '', redisUrl: '' };
