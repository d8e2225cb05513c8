import { expect } from 'chai';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('health, readiness and metrics', () => {
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem();
  });
  after(async () => {
    await sys.stop();
  });

  it('GET /health answers ok with a request id', async () => {
    const res = await sys.http.get('/health');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ok' });
    expect(res.headers.get('x-request-id')).to.match(/^req_/);
  });

  it('GET /ready checks Postgres, Redis and migrations', async () => {
    const res = await sys.http.get('/ready');
    expect(res.status).to.equal(200);
    expect(res.body.checks).to.deep.equal({ postgres: 'ok', redis: 'ok', migrations: 'ok' });
  });

  it('GET /metrics exports request counts by route', async () => {
    await sys.http.get('/health');
    const res = await sys.http.get('/metrics');
    expect(res.status).to.equal(200);
    expect(res.text).to.match(/mps_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/);
  });

  it('unknown routes are 404 NOT_FOUND in the error shape', async () => {
    const res = await sys.http.get('/v1/nope', { key: sys.adminKey });
    expect(res.status).to.equal(404);
    expect(res.body.error.code).to.equal('NOT_FOUND');
    expect(res.body.error.request_id).to.equal(res.headers.get('x-request-id'));
  });

  it('a missing or unknown key is 401 UNAUTHENTICATED', async () => {
    expect((await sys.http.get('/v1/levels')).body.error.code).to.equal('UNAUTHENTICATED');
    const res = await sys.http.get('/v1/levels', { key: 'mps_admin_' + 'x'.repeat(43) });
    expect(res.status).to.equal(401);
    expect(res.body.error.code).to.equal('UNAUTHENTICATED');
  });
});
