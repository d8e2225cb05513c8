import { expect } from 'chai';
import { COUNTED_FROM_ZERO, createMetrics, parseRedisMemory } from '../../config/metrics.js';
import { RISK_RULES } from '../../domain/risk-rules.js';

describe('metrics', () => {
  it('exports every alerting counter at 0 before its first event, so increase() sees the first one after a restart', async () => {
    const text = await createMetrics().registry.metrics();
    for (const outcome of ['failed', 'gone', 'retry', 'delivered']) expect(text).to.contain(`mps_webhook_deliveries_total{outcome="${outcome}"} 0`);
    for (const rule of Object.keys(RISK_RULES)) expect(text).to.contain(`mps_risk_alerts_total{rule="${rule}"} 0`);
    expect(text).to.contain('mps_risk_alerts_total{rule="operation_internal_error"} 0');
    for (const queue of COUNTED_FROM_ZERO.jobQueues) expect(text).to.contain(`mps_jobs_total{queue="${queue}",outcome="retry"} 0`);
  });

  it('reads used_memory and maxmemory from Redis INFO memory', () => {
    const info = '# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\nmaxmemory_human:4.00M\r\n';
    expect(parseRedisMemory(info)).to.deep.equal({ used: 1_048_576, max: 4_194_304 });
    expect(parseRedisMemory('')).to.equal(undefined);
  });
});
