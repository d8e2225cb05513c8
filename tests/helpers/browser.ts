import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (`apt-get install -y chromium`), driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/** `Authorization: Basic …`, as Bull Board and the console take their keys. */
export const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/**
 * Headless chromium for the describe block this is called in, and a folder for its screenshots:
 * launched before its tests, closed after; the block is skipped (saying why) where chromium is absent.
 */
export function headlessChromium(name: string): { browser: () => Browser; shotDir: () => string } {
  let browser: Browser | undefined;
  let shotDir: string | undefined;
  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    (skipping the browser tests: ${CHROMIUM} does not exist; install it with apt-get install -y chromium)`);
      this.skip();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    shotDir = mkdtempSync(join(tmpdir(), `mps-${name}-`));
  });
  after(async () => {
    await browser?.close();
    if (shotDir) rmSync(shotDir, { recursive: true, force: true });
  });
  return { browser: () => browser!, shotDir: () => shotDir! };
}
