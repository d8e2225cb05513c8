import { existsSync } from 'node:fs';
import { validate as validCron } from 'node-cron';
import { z } from 'zod';
import type { CardLimits } from '../domain/card-limits.js';
import { parseAmount } from '../domain/money.js';
import { BOTH_SET, parseClusterNodes, parseRedisUrl, RedisTargetError } from './redis-target.js';

/** Parses "true"/"false"/"1"/"0" strictly, so a typo such as "ture" is reported, not read as false. */
const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

/** Plain decimal digits only: " ", "0x50" and "1e3" are typos here, not numbers. */
const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,12}$/, 'must be a whole number')
    .default(String(fallback))
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** Amounts in config are written like API amounts ("50000.00") and held in minor units. */
const amount = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseAmount(v, Number.MAX_SAFE_INTEGER);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be an amount with at most 2 decimals' });
        return z.NEVER;
      }
    });

/** An amount whose absence means "none" (a limit not set). */
const optionalAmount = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return null;
      try {
        return parseAmount(v, Number.MAX_SAFE_INTEGER);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be an amount with at most 2 decimals, more than 0' });
        return z.NEVER;
      }
    });

/** A whole number whose absence means "none". */
const optionalInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,12}$/, 'must be a whole number')
    .optional()
    .transform((v) => (v === undefined ? null : Number(v)))
    .pipe(z.number().int().min(min).max(max).nullable());

const cron = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => validCron(v), 'must be a cron expression (5 or 6 fields)');

/** A boolean whose absence means "derive it from other settings" (see the reader). */
const optionalBool = () =>
  z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'));

const optionalUrl = (protocols: string[]) =>
  z
    .string()
    .optional()
    .refine((v) => v === undefined || protocols.some((p) => v.startsWith(p)), `must start with ${protocols.join(' or ')}`);

/** A Redis setting checked by its parser, which says what is wrong with it. */
const redisSetting = (parse: (value: string) => unknown) =>
  z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      try {
        parse(v);
      } catch (err) {
        if (!(err instanceof RedisTargetError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
      }
    });

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(3000, 0, 65535),
  // The API's listen address: every interface for the Procfile web; `npm start` sets 127.0.0.1.
  HOST: z.string().regex(/^[0-9A-Za-z.:-]+$/, 'must be an IP address or host name').default('0.0.0.0'),
  // A request (headers and body) must arrive within this time: a slowly sent body does not hold a socket open.
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 500, 600_000),
  WORKER_METRICS_PORT: int(9464, 0, 65535),
  SCHEDULER_METRICS_PORT: int(9465, 0, 65535),
  // `npm start` only: how many worker processes it runs beside its one web and one scheduler.
  WORKER_PROCESSES: int(1, 1, 16),
  // How often workers sample the oldest open operation's age and Postgres reachability for /metrics.
  PROBE_INTERVAL_MS: int(15_000, 100, 600_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: optionalUrl(['postgres://', 'postgresql://']),
  // One node or Sentinel; a Cluster is REDIS_CLUSTER_NODES instead (config/redis-target.ts has the forms).
  REDIS_URL: redisSetting(parseRedisUrl),
  REDIS_CLUSTER_NODES: redisSetting(parseClusterNodes),
  // Lists, reports, exports and settlement reads go here when set (a streaming replica); never the money path.
  DATABASE_READ_URL: optionalUrl(['postgres://', 'postgresql://']),
  // pgbouncer: transaction pooling in front of Postgres (no startup parameters; timeout from the role).
  DATABASE_POOLER: z.enum(['none', 'pgbouncer']).default('none'),
  // Unset: on without a pooler, off with DATABASE_POOLER=pgbouncer (< 1.21 or no max_prepared_statements).
  DB_PREPARED_STATEMENTS: optionalBool(),
  DB_POOL_MAX: int(20, 1, 500),
  DB_QUERY_TIMEOUT_MS: int(10_000, 100, 600_000),
  REDIS_COMMAND_TIMEOUT_MS: int(2000, 50, 60_000),
  MPS_ADMIN_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || (v.startsWith('mps_admin_') && v.length >= 40), { message: 'must start with mps_admin_ and be at least 40 characters', abort: true })
    .refine((v) => v === undefined || secretStrengthBits(v.slice('mps_admin_'.length)) >= 128, 'must carry at least 128 bits of randomness (make one with `npm run cli -- create-admin-key`)'),
  ENCRYPTION_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^[0-9a-fA-F]{64}$/.test(v), 'must be 64 hex characters (32 bytes)'),
  METRICS_TOKEN: z.string().min(16).optional(),
  CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code').default('TWD'),

  CARD_PARTITIONS: int(16, 1, 1024),
  // A partition's job applies up to this many of its queued operations in one transaction.
  OPERATION_BATCH_MAX: int(32, 1, 1000),
  JOB_ATTEMPTS: int(5, 1, 50),
  JOB_BACKOFF_MS: int(200, 1, 600_000),
  RECONCILE_AFTER_S: int(30, 1, 86_400),
  QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('mps'),
  JOB_LOCK_MS: int(30_000, 1000, 600_000),
  STALLED_INTERVAL_MS: int(30_000, 1000, 600_000),
  // Fault injection for `npm run test:faults` only: the worker kills itself at the Nth pass of a named point.
  MPS_CRASH_AT: z
    .string()
    .regex(/^(before-commit|after-commit-before-ack|after-commit-before-follow-ups)@\d+$/, 'must be before-commit@N, after-commit-before-ack@N or after-commit-before-follow-ups@N')
    .optional(),

  MAX_AMOUNT: amount('1000000.00'),
  MAX_RECHARGE: amount('50000.00'),
  MAX_BALANCE: amount('1000000.00'),
  // Face value an app key may put on a voucher (against a payment_reference); admins up to MAX_AMOUNT.
  MAX_VOUCHER_VALUE: amount('10000.00'),
  LARGE_TX_ALERT: amount('50000.00'),
  // An adjustment larger than this either way (absolute) waits for a second admin key (four eyes).
  ADJUSTMENT_APPROVAL_OVER: amount('1000.00'),
  // Platform limits of a card's payments from its balance, where the card sets none; unset: no limit.
  CARD_SINGLE_PAYMENT_LIMIT: optionalAmount(),
  CARD_DAILY_SPEND_LIMIT: optionalAmount(),
  CARD_DAILY_PAYMENT_COUNT: optionalInt(1, 1_000_000),
  REFUND_WINDOW_DAYS: int(180, 0, 3650),
  QR_SINGLE_USE: bool(true),
  QR_DEFAULT_TTL_S: int(900, 60, 3600),
  SHARED_QR_TTL_S: int(300, 60, 3600),
  QR_HISTORY_DAYS: int(90, 1, 3650),
  IDEMPOTENCY_TTL_H: int(168, 1, 24 * 365),
  WEBHOOK_RETENTION_DAYS: int(30, 1, 3650),
  ALERT_RETENTION_DAYS: int(90, 1, 3650),
  // Failed operations (refusals: no money moved). A succeeded one is kept with its transaction.
  OPERATION_RETENTION_DAYS: int(7 * 365, 1, 36_500),
  // Relayed outbox events; never fewer days than their webhook deliveries are kept (redelivery reads them).
  OUTBOX_RETENTION_DAYS: int(30, 1, 3650),
  AUDIT_RETENTION_DAYS: int(10 * 365, 1, 36_500),
  // When set, archived audit events are written there (JSON lines) before they are deleted.
  AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
  CLEANUP_BATCH_SIZE: int(5000, 1, 100_000),
  CLEANUP_TIME_BUDGET_S: int(600, 0, 86_400),
  CLEANUP_BATCH_PAUSE_MS: int(100, 0, 60_000),
  // Where `cli backup` / `restore` look first for pg_dump and pg_restore (then Debian's /usr/lib/postgresql/*/bin, then PATH).
  PG_BIN_DIR: z.string().min(1).optional(),
  MAX_BINDINGS_PER_CARD: int(10, 1, 1000),
  MEMBER_TOKEN_TTL_S: int(3600, 60, 86_400 * 30),
  MAX_WAIT_S: int(30, 0, 30),

  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/).default('32kb'),
  AUTH_CACHE_TTL_MS: int(5000, 0, 600_000),
  RATE_LIMIT_PER_KEY_PER_MIN: int(6000, 1, 10_000_000),
  RATE_LIMIT_PER_IP_PER_MIN: int(12_000, 1, 10_000_000),
  RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN: int(3000, 1, 10_000_000),
  RATE_LIMIT_QR_VALIDATE_PER_KEY_PER_MIN: int(600, 1, 10_000_000),
  RATE_LIMIT_BIND_PER_MIN: int(10, 1, 10_000),
  RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN: int(30, 1, 10_000_000),
  // Wrong binding passwords on one card, from any caller, before binding to it is locked for BINDING_LOCK_S.
  BINDING_MAX_FAILURES: int(5, 1, 1000),
  BINDING_LOCK_S: int(900, 1, 86_400),

  SETTLEMENT_CRON: cron('10 0 * * *'),
  SETTLEMENT_TZ: z
    .string()
    .default('Asia/Taipei')
    .refine((tz) => Intl.supportedValuesOf('timeZone').includes(tz) || tz === 'UTC', 'must be an IANA time zone such as Asia/Taipei'),
  // Daily reports: this tick rolls report days (SETTLEMENT_TZ) up to REPORT_ROLLUP_GRACE_S before
  // now; each report aggregates live only what came since (at most about one interval plus the grace).
  REPORT_ROLLUP_CRON: cron('*/5 * * * *'),
  REPORT_ROLLUP_GRACE_S: int(120, 0, 86_400),
  QR_ROTATE_CRON: cron('*/5 * * * *'),
  CLEANUP_CRON: cron('30 3 * * 0'),
  ANOMALY_CRON: cron('* * * * *'),
  RECONCILE_CRON: cron('*/10 * * * * *'),
  RISK_AUTO_BLOCK: bool(false),
  // http:// and private/loopback targets: only for the embedded `npm start` and tests, never in production.
  WEBHOOK_ALLOW_INSECURE: bool(false),
  WEBHOOK_MAX_ENDPOINTS: int(16, 1, 1000),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100, 60_000),
  WEBHOOK_BACKOFF_BASE_MS: int(30_000, 1, 3_600_000),
  WEBHOOK_BACKOFF_CAP_MS: int(6 * 3_600_000, 1, 86_400_000),
  WEBHOOK_MAX_AGE_S: int(3 * 86_400, 1, 30 * 86_400),
  WEBHOOK_CONCURRENCY: int(20, 1, 500),
  WEBHOOK_PER_ENDPOINT_CONCURRENCY: int(2, 1, 100),
  RELAY_CRON: cron('* * * * * *'),
  // Bull Board can retry, clean and add jobs only when this is on; read-only otherwise.
  BULL_BOARD_WRITE: bool(false),
}).superRefine((env, ctx) => {
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: BOTH_SET });
});

/** Production refuses settings that are only safe on a developer's machine. */
function productionProblems(c: z.output<typeof schema>): string[] {
  if (c.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  if (!c.METRICS_TOKEN) problems.push('METRICS_TOKEN: required when NODE_ENV=production (/metrics would be open)');
  if (c.WEBHOOK_ALLOW_INSECURE) problems.push('WEBHOOK_ALLOW_INSECURE: must be false when NODE_ENV=production (webhooks would reach internal services)');
  return problems;
}

/**
 * Bits of randomness a secret can carry at most: its length times log2 of the character
 * classes it uses, cut down when its characters repeat (empirical entropy), so neither
 * 30 × "a" nor "abcd" × 8 passes for a key.
 */
export function secretStrengthBits(secret: string): number {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/];
  const pool = [26, 26, 10, 32].reduce((sum, size, i) => sum + (classes[i]!.test(secret) ? size : 0), 0);
  const counts = new Map<string, number>();
  for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let empirical = 0;
  for (const n of counts.values()) empirical -= (n / secret.length) * Math.log2(n / secret.length);
  return Math.min(secret.length * Math.log2(Math.max(pool, 1)), secret.length * empirical * 1.4);
}

export type Config = Readonly<z.output<typeof schema>>;

/** Thrown when the environment is invalid; lists every bad variable at once. */
export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * Reads the configuration once. Empty strings count as unset so that a `.env` line like
 * `METRICS_TOKEN=` means "use the default".
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const config = { ...parsed.data, ...overrides };
  const problems = productionProblems(config);
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(config);
}

/**
 * Entry points read `./.env` when there is one (see .env.example). Variables already set in the
 * environment win, so a deployment's own settings are never overridden by a stray file.
 */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

/** For entry points: the configuration (with ./.env), or the list of bad variables on stderr and exit code 1. */
export function loadConfigOrExit(): Config {
  try {
    loadDotEnv();
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
}

/** The platform's card limits (CARD_* settings): what a card without its own has; null = no limit. */
export const cardLimitDefaults = (config: Pick<Config, 'CARD_SINGLE_PAYMENT_LIMIT' | 'CARD_DAILY_SPEND_LIMIT' | 'CARD_DAILY_PAYMENT_COUNT'>): CardLimits => ({
  single_payment_limit: config.CARD_SINGLE_PAYMENT_LIMIT,
  daily_spend_limit: config.CARD_DAILY_SPEND_LIMIT,
  daily_payment_count: config.CARD_DAILY_PAYMENT_COUNT,
});

/** The names of every setting, for `.env.example` and the README table. */
export const CONFIG_KEYS = Object.keys(schema.shape);
