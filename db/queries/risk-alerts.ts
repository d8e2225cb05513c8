import { newestFirst, type Db, type PageRequest } from '../knex.js';

export interface RiskAlertRow {
  id: string;
  rule: string;
  subject_type: string;
  subject_id: string;
  window_start: Date;
  severity: string;
  details: Record<string, unknown>;
  status: 'open' | 'resolved';
  created_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolution_note: string | null;
}

export interface NewAlert {
  rule: string;
  subject_type: 'merchant' | 'card' | 'transaction' | 'operation';
  subject_id: string;
  window_start: Date;
  severity: 'info' | 'warning' | 'critical';
  details: Record<string, unknown>;
}

/** Inserts an alert unless one exists for the rule, subject and window; returns it only when new. */
export async function raiseAlert(db: Db, alert: NewAlert): Promise<RiskAlertRow | undefined> {
  const [row] = await db<RiskAlertRow>('risk_alerts')
    .insert({ ...alert, details: JSON.stringify(alert.details) } as never)
    .onConflict(['rule', 'subject_type', 'subject_id', 'window_start'])
    .ignore()
    .returning('*');
  return row;
}

export async function listAlerts(db: Db, f: PageRequest & { status?: string; rule?: string }): Promise<RiskAlertRow[]> {
  const q = newestFirst(db, db<RiskAlertRow>('risk_alerts').select('risk_alerts.*'), 'risk_alerts', f);
  if (f.status) q.where('status', f.status);
  if (f.rule) q.where('rule', f.rule);
  return q;
}

export async function findAlert(db: Db, id: string): Promise<RiskAlertRow | undefined> {
  return db<RiskAlertRow>('risk_alerts').where({ id }).first();
}

export async function resolveAlert(db: Db, id: string, by: string, note: string | null): Promise<RiskAlertRow | undefined> {
  const [row] = await db<RiskAlertRow>('risk_alerts')
    .where({ id, status: 'open' })
    .update({ status: 'resolved', resolved_at: db.fn.now(), resolved_by: by, resolution_note: note } as never)
    .returning('*');
  return row;
}
