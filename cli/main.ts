import { ConfigError, loadConfig, loadDotEnv, type Config } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { closeDeps, createDeps } from '../app/deps.js';
import { redisConfigured } from '../config/redis.js';
import { doctor, formatReport } from './doctor.js';
import { backup, restore } from './backup.js';
import { BackupError } from './pg-tools.js';
import { createKnex, migrateLatest } from '../db/knex.js';
import { createApiKey } from '../db/queries/api-keys.js';
import { archivedAuditTotal, verifyAuditChain } from '../db/queries/audit-events.js';
import { runningStack } from '../dev/stack-file.js';

const USAGE = `Usage: npm run cli -- <command>

Commands:
  migrate                    apply pending migrations
  create-admin-key [name]    create an admin API key and print it (shown once)
  create-key --role app|admin [--name NAME]
                             create an app key (the member-app backend's) or an admin key, shown once
  verify-ledger              check balance = Σ balance_ledger and points = Σ point_ledger for every card
  verify-audit               walk the audit hash chain and report the first broken link
  doctor                     health report: Postgres, Redis settings, migrations, backlog, stuck work, disk
  backup [--out FILE]        pg_dump (custom format) of the database, with FILE.manifest.json (migration,
                             server version, created_at, SHA-256)
  restore FILE               restore a backup into the EMPTY database of DATABASE_URL, after checking its SHA-256

Uses DATABASE_URL and REDIS_URL, or else the embedded stack of a running \`npm start\` in this folder.`;

/** The value of `--flag VALUE` or `--flag=VALUE` in the arguments: undefined when absent, '' when the value is missing. */
function optionValue(args: string[], flag: string): string | undefined {
  const at = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (at === -1) return undefined;
  return args[at]!.startsWith(`${flag}=`) ? args[at]!.slice(flag.length + 1) : (args[at + 1] ?? '');
}

/** The URLs of a running `npm start` fill in what the environment leaves unset. */
function withRunningStack(config: Config): Config {
  const hasRedis = redisConfigured(config);
  if (config.DATABASE_URL && hasRedis) return config;
  const stack = runningStack();
  if (!stack) return config;
  console.error(`Using the embedded stack of npm start (pid ${stack.pid}).`);
  return Object.freeze({ ...config, DATABASE_URL: config.DATABASE_URL ?? stack.databaseUrl, REDIS_URL: hasRedis ? config.REDIS_URL : stack.redisUrl });
}

/** Operator commands against the configured database. */
async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  loadDotEnv();
  const config = withRunningStack(loadConfig());
  if (!config.DATABASE_URL || (command === 'doctor' && !redisConfigured(config))) {
    console.error('Set DATABASE_URL (and REDIS_URL or REDIS_CLUSTER_NODES for doctor), or run `npm start` in this folder first.');
    return 2;
  }
  const logger = createLogger('warn');
  if (command === 'doctor') {
    const deps = await createDeps(config, { logger: createLogger('silent') });
    try {
      const checks = await doctor(deps);
      console.log(formatReport(checks));
      return checks.some((c) => c.level === 'fail') ? 1 : 0;
    } finally {
      await closeDeps(deps);
    }
  }
  const db = createKnex(config.DATABASE_URL, 2, (err) => logger.warn({ err: err.message }, 'postgres client error'));
  try {
    switch (command) {
      case 'migrate': {
        const applied = await migrateLatest(db);
        console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Already up to date.');
        return 0;
      }
      case 'create-key': {
        const role = optionValue(args, '--role');
        if (role !== 'app' && role !== 'admin') {
          console.error('create-key needs --role app or --role admin (merchant keys: POST /v1/merchants/:id/api-keys)');
          return 2;
        }
        const { row, key } = await createApiKey(db, { role, name: optionValue(args, '--name') ?? `cli ${role}` });
        console.log(`${role === 'app' ? 'App' : 'Admin'} key ${row.id} (prefix ${row.prefix}). It is shown only now:\n${key}`);
        return 0;
      }
      case 'create-admin-key': {
        const { row, key } = await createApiKey(db, { role: 'admin', name: args[0] ?? 'cli' });
        console.log(`Admin key ${row.id} (prefix ${row.prefix}). It is shown only now:\n${key}`);
        return 0;
      }
      case 'verify-ledger': {
        const { rows } = await db.raw<{ rows: { id: string; card_no: string; balance_minor: number; ledger_balance: number; points: number; ledger_points: number }[] }>(`
          SELECT c.id, c.card_no, c.balance_minor, coalesce(b.sum, 0)::bigint AS ledger_balance, c.points, coalesce(p.sum, 0)::bigint AS ledger_points
            FROM member_cards c
            LEFT JOIN (SELECT card_id, sum(delta_minor) AS sum FROM balance_ledger GROUP BY card_id) b ON b.card_id = c.id
            LEFT JOIN (SELECT card_id, sum(delta) AS sum FROM point_ledger GROUP BY card_id) p ON p.card_id = c.id
           WHERE c.balance_minor <> coalesce(b.sum, 0) OR c.points <> coalesce(p.sum, 0)`);
        const { rows: counted } = await db.raw<{ rows: { n: number }[] }>('SELECT count(*)::bigint AS n FROM member_cards');
        for (const r of rows) console.log(`MISMATCH card ${r.card_no}: balance ${r.balance_minor} vs ledger ${r.ledger_balance}; points ${r.points} vs ledger ${r.ledger_points}`);
        console.log(`${counted[0]!.n} cards checked, ${rows.length} mismatched.`);
        return rows.length ? 1 : 0;
      }
      case 'verify-audit': {
        const result = await verifyAuditChain(db);
        const archivedTotal = await archivedAuditTotal(db);
        const archived = archivedTotal ? ` (${archivedTotal} older events archived behind checkpoints)` : '';
        console.log(result.ok ? `Audit chain intact: ${result.checked} events checked${archived}.` : `Audit chain BROKEN at event ${result.first_broken_id} (${result.checked} events before it verify).`);
        return result.ok ? 0 : 1;
      }
      case 'backup': {
        const out = optionValue(args, '--out');
        if (out === '') return usageError('backup --out needs a file name');
        const { file, manifest } = await backup(db, config.DATABASE_URL, { out, binDir: config.PG_BIN_DIR });
        console.log(`Backup written: ${file} (${manifest.bytes} bytes, sha256 ${manifest.sha256}) at migration ${manifest.migration}, server ${manifest.server_version}.`);
        console.log(`Manifest: ${file}.manifest.json. Keep both together, off this machine.`);
        return 0;
      }
      case 'restore': {
        if (!args[0]) return usageError('restore needs the dump file');
        const manifest = await restore(db, config.DATABASE_URL, args[0], { binDir: config.PG_BIN_DIR });
        console.log(`Restored ${args[0]} (taken ${manifest.created_at}, migration ${manifest.migration}).`);
        console.log('Next: npm run cli -- verify-ledger && npm run cli -- verify-audit, then start the engine on this database.');
        return 0;
      }
      default:
        console.error(`Unknown command: ${command}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (!(err instanceof BackupError)) throw err;
    console.error(err.message);
    return 1;
  } finally {
    await db.destroy();
  }
}

function usageError(problem: string): number {
  console.error(`${problem}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  },
);
