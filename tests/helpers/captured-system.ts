import { Writable } from 'node:stream';
import type { Config } from '../../config/env.js';
import { createLogger } from '../../config/logger.js';
import { startSystem, type TestSystem } from './system.js';

/** Collects everything pino writes, as text and as parsed JSON lines. */
export class LogCapture extends Writable {
  readonly chunks: string[] = [];

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }

  get text(): string {
    return this.chunks.join('');
  }

  /** Every line as JSON; a line that is not JSON fails the test that reads it. */
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`log line is not JSON: ${l}`);
        }
      });
  }
}

export interface CapturedSystem extends TestSystem {
  logs: LogCapture;
}

/** A test system (tests/helpers/system.ts) whose pino logger writes to memory, so tests can read every log line. */
export async function startCapturedSystem(logLevel: Config['LOG_LEVEL'], overrides: Partial<Config> = {}): Promise<CapturedSystem> {
  const logs = new LogCapture();
  const sys = await startSystem({ LOG_LEVEL: logLevel, ...overrides }, { logger: createLogger(logLevel, logs) });
  return { ...sys, logs };
}
