import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { open, seal } from '../../domain/secret-box.js';
import { retryDelayMs, signature, signatureHeader, verifySignatureHeader } from '../../domain/webhook-signature.js';
import { isPrivateAddress, webhookUrlProblem } from '../../domain/webhook-url.js';
import { loadReadmeReceiver, type ReadmeReceiverModule } from '../helpers/webhook-receiver.js';

const SECRET = 'whsec_test_vector';
const OTHER = 'whsec_other_secret';
const T = 1_700_000_000;
const BODY = '{"id":"evt_1","type":"payment.succeeded"}';
/** HMAC-SHA256("whsec_test_vector", "1700000000.{…}") computed independently with node:crypto. */
const VECTOR = '4a374d4cd5792c4ce8d27bcc29d9d16157b2afeff2d6f29c52c5018500e63ee0';

const hmac = (secret: string, t: number, body: string) => createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');

describe('domain/webhook-signature', () => {
  it('v1 is hex HMAC-SHA256(secret, "<t>.<raw body>") (fixed test vector)', () => {
    expect(signature(SECRET, T, BODY)).to.equal(VECTOR);
    expect(hmac(SECRET, T, BODY)).to.equal(VECTOR);
    // Multi-byte bodies are signed over their UTF-8 bytes.
    const zh = '{"member":{"name":"王**"}}';
    expect(signature(SECRET, T, zh)).to.equal(createHmac('sha256', SECRET).update(Buffer.from(`${T}.${zh}`, 'utf8')).digest('hex'));
  });

  it('the header is t=<unix>,v1=<hex> with one v1 per secret, newest first', () => {
    expect(signatureHeader([SECRET], T, BODY)).to.equal(`t=${T},v1=${VECTOR}`);
    expect(signatureHeader([OTHER, SECRET], T, BODY)).to.equal(`t=${T},v1=${hmac(OTHER, T, BODY)},v1=${VECTOR}`);
  });

  describe('verifySignatureHeader', () => {
    const header = signatureHeader([SECRET], T, BODY);

    it('accepts the right secret and body within 300 s either way, and each secret of a rotation header', () => {
      expect(verifySignatureHeader(header, SECRET, BODY, T)).to.equal(true);
      expect(verifySignatureHeader(header, SECRET, BODY, T + 300)).to.equal(true);
      expect(verifySignatureHeader(header, SECRET, BODY, T - 300)).to.equal(true);
      const both = signatureHeader([OTHER, SECRET], T, BODY);
      expect(verifySignatureHeader(both, SECRET, BODY, T)).to.equal(true);
      expect(verifySignatureHeader(both, OTHER, BODY, T)).to.equal(true);
      expect(verifySignatureHeader(both, 'whsec_third', BODY, T)).to.equal(false);
    });

    it('rejects a wrong secret, a tampered body, a stale or future t, and malformed headers', () => {
      expect(verifySignatureHeader(header, OTHER, BODY, T)).to.equal(false);
      expect(verifySignatureHeader(header, SECRET, BODY.replace('evt_1', 'evt_2'), T)).to.equal(false);
      expect(verifySignatureHeader(header, SECRET, `${BODY} `, T)).to.equal(false);
      expect(verifySignatureHeader(header, SECRET, BODY, T + 301)).to.equal(false);
      expect(verifySignatureHeader(header, SECRET, BODY, T - 301)).to.equal(false);
      expect(verifySignatureHeader('', SECRET, BODY, T)).to.equal(false);
      expect(verifySignatureHeader(`v1=${VECTOR}`, SECRET, BODY, T)).to.equal(false);
      expect(verifySignatureHeader(`t=${T}`, SECRET, BODY, T)).to.equal(false);
      expect(verifySignatureHeader(`t=${T},v1=${VECTOR.slice(0, 62)}`, SECRET, BODY, T)).to.equal(false);
      expect(verifySignatureHeader(`t=${T}.5,v1=${VECTOR}`, SECRET, BODY, T)).to.equal(false);
      // A signature for another t does not verify with this t.
      expect(verifySignatureHeader(`t=${T + 1},v1=${VECTOR}`, SECRET, BODY, T)).to.equal(false);
    });

    it('answers false (does not throw) for a v1 of the right length that is not hex', () => {
      // A forged header must be refused, not crash the verifier: Buffer.from('zz…', 'hex') is
      // shorter than 32 bytes and timingSafeEqual throws on the length mismatch.
      let result: boolean | undefined;
      expect(() => {
        result = verifySignatureHeader(`t=${T},v1=${'z'.repeat(64)}`, SECRET, BODY, T);
      }).to.not.throw();
      expect(result).to.equal(false);
    });
  });

  describe('retryDelayMs (exponential backoff with ±50 % jitter, capped)', () => {
    it('without jitter (random = 0.5) doubles each attempt: base × 2^attempt', () => {
      const delays = [0, 1, 2, 3, 4].map((a) => retryDelayMs(a, 100, 1_000_000, () => 0.5));
      expect(delays).to.deep.equal([100, 200, 400, 800, 1600]);
    });

    it('jitter keeps each delay within [0.5, 1.5) × base × 2^attempt', () => {
      for (let attempt = 0; attempt < 8; attempt++) {
        const nominal = 100 * 2 ** attempt;
        expect(retryDelayMs(attempt, 100, 1e9, () => 0)).to.equal(nominal / 2);
        expect(retryDelayMs(attempt, 100, 1e9, () => 0.999_999)).to.be.closeTo(nominal * 1.5, 1);
        for (let i = 0; i < 50; i++) {
          const d = retryDelayMs(attempt, 100, 1e9);
          expect(d).to.be.at.least(nominal / 2).and.at.most(nominal * 1.5);
        }
      }
    });

    it('stops growing at the cap (before jitter), and huge attempt counts do not overflow', () => {
      expect(retryDelayMs(20, 30_000, 21_600_000, () => 0.5)).to.equal(21_600_000);
      expect(retryDelayMs(1000, 30_000, 21_600_000, () => 0.5)).to.equal(21_600_000);
      expect(Number.isFinite(retryDelayMs(10_000, 30_000, 21_600_000))).to.equal(true);
    });

    it('the default schedule (30 s base, 6 h cap) gives about a dozen attempts in 3 days, not hundreds', () => {
      let elapsed = 0;
      let attempts = 0;
      while (elapsed <= 3 * 86_400_000) {
        elapsed += retryDelayMs(attempts, 30_000, 6 * 3_600_000, () => 0.5);
        attempts++;
      }
      expect(attempts).to.be.within(15, 25);
    });
  });
});

describe('docs/webhook-receiver.mjs verify() (the README receiver)', () => {
  let readme: ReadmeReceiverModule;
  before(async () => {
    readme = await loadReadmeReceiver();
  });

  it('accepts what MPS signs (domain signatureHeader), also with two v1 during a rotation', () => {
    expect(readme.verify(signatureHeader([SECRET], T, BODY), BODY, SECRET, T)).to.equal(true);
    const both = signatureHeader([OTHER, SECRET], T, BODY);
    expect(readme.verify(both, BODY, SECRET, T)).to.equal(true);
    expect(readme.verify(both, BODY, OTHER, T)).to.equal(true);
    expect(readme.verify(signatureHeader([SECRET], T, BODY), BODY, SECRET, T + 300)).to.equal(true);
  });

  it('rejects a wrong secret, a tampered body, t older than 300 s, t more than 300 s ahead, and a missing header', () => {
    const header = signatureHeader([SECRET], T, BODY);
    expect(readme.verify(header, BODY, OTHER, T)).to.equal(false);
    expect(readme.verify(header, BODY.replace('payment', 'refund'), SECRET, T)).to.equal(false);
    expect(readme.verify(header, BODY, SECRET, T + 301)).to.equal(false);
    expect(readme.verify(header, BODY, SECRET, T - 301)).to.equal(false);
    expect(readme.verify(undefined, BODY, SECRET, T)).to.equal(false);
    expect(readme.verify('', BODY, SECRET, T)).to.equal(false);
    expect(readme.verify(`t=${T}`, BODY, SECRET, T)).to.equal(false);
    // A correct HMAC for a stale t is still stale.
    const staleT = T - 301;
    expect(readme.verify(`t=${staleT},v1=${hmac(SECRET, staleT, BODY)}`, BODY, SECRET, T)).to.equal(false);
    // Uses the current clock by default: a header signed just now verifies, one from 10 min ago does not.
    const now = Math.floor(Date.now() / 1000);
    expect(readme.verify(signatureHeader([SECRET], now, BODY), BODY, SECRET)).to.equal(true);
    expect(readme.verify(signatureHeader([SECRET], now - 600, BODY), BODY, SECRET)).to.equal(false);
  });

  it('answers false (does not throw) for a v1 of 64 characters that is not hex', () => {
    // Same defect as the domain verifier: timingSafeEqual throws on the shorter decoded buffer, and
    // in receiver() that throw happens inside the request 'end' handler (see the e2e test).
    let result: boolean | undefined;
    expect(() => {
      result = readme.verify(`t=${T},v1=${'z'.repeat(64)}`, BODY, SECRET, T);
    }).to.not.throw();
    expect(result).to.equal(false);
  });
});

describe('domain/secret-box (webhook secrets at rest)', () => {
  const key = randomBytes(32).toString('hex');

  it('round-trips, with a fresh IV each time, and never contains the plain secret', () => {
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const a = seal(secret, key);
    const b = seal(secret, key);
    expect(a).to.match(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(a).to.not.equal(b);
    expect(a).to.not.contain(secret.slice(6));
    expect(open(a, key)).to.equal(secret);
    expect(open(b, key)).to.equal(secret);
  });

  it('refuses another key and a tampered ciphertext (GCM authentication)', () => {
    const sealed = seal('whsec_abc', key);
    expect(() => open(sealed, randomBytes(32).toString('hex'))).to.throw();
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3]!, 'base64url');
    data[0] = data[0]! ^ 1;
    expect(() => open([parts[0], parts[1], parts[2], data.toString('base64url')].join('.'), key)).to.throw();
    expect(() => open('v2.a.b.c', key)).to.throw('not a sealed secret');
  });
});

describe('domain/webhook-url', () => {
  it('allows https always and http only when insecure is allowed; refuses credentials and other schemes', () => {
    expect(webhookUrlProblem('https://hooks.example.com/mps', false)).to.equal(undefined);
    expect(webhookUrlProblem('http://hooks.example.com/mps', false)).to.equal('must be https');
    expect(webhookUrlProblem('http://127.0.0.1:8080/mps', true)).to.equal(undefined);
    expect(webhookUrlProblem('ftp://hooks.example.com/', true)).to.equal('must be http or https');
    expect(webhookUrlProblem('https://user:pw@hooks.example.com/', true)).to.equal('must not carry credentials');
    expect(webhookUrlProblem('not a url', true)).to.equal('is not a URL');
  });

  it('treats loopback, private, link-local, CGNAT, multicast and mapped addresses as private', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fc00::1', 'fd12::1', 'fe80::1', '::ffff:127.0.0.1', 'not-an-ip']) {
      expect(isPrivateAddress(a), a).to.equal(true);
    }
    for (const a of ['8.8.8.8', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111']) {
      expect(isPrivateAddress(a), a).to.equal(false);
    }
  });

  it('judges IPv6 forms that carry an IPv4 address by that address, and allows only global unicast IPv6', () => {
    for (const a of ['::ffff:7f00:1', '::ffff:a00:1', '::7f00:1', '::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', '2001:0:4136::1', '2001:db8::1', '[::1]', 'fe80::1%eth0', 'ff02::1', '100::1']) {
      expect(isPrivateAddress(a), a).to.equal(true);
    }
    for (const a of ['::ffff:808:808', '64:ff9b::808:808', '2a00:1450:4001::200e']) {
      expect(isPrivateAddress(a), a).to.equal(false);
    }
  });

  it('refuses IP-literal URLs of private hosts in every spelling the URL parser accepts, before any DNS', () => {
    for (const url of ['https://127.0.0.1/', 'https://2130706433/', 'https://0x7f000001/', 'https://127.1/', 'https://0177.0.0.1/', 'https://0.0.0.0/', 'https://[::1]/', 'https://[::ffff:127.0.0.1]/', 'https://localhost/', 'https://api.localhost/', 'https://169.254.169.254/']) {
      expect(webhookUrlProblem(url, false), url).to.equal('must not be a private or loopback address');
    }
    expect(webhookUrlProblem('https://8.8.8.8/', false)).to.equal(undefined);
    expect(webhookUrlProblem('https://hooks.example.com/', false)).to.equal(undefined);
  });
});
