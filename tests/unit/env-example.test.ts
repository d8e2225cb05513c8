import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { CONFIG_KEYS } from '../../config/env.js';

describe('.env.example', () => {
  it('lists every setting the config reads, and nothing else', () => {
    const listed = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z0-9_]+=/.test(line))
      .map((line) => line.split('=')[0]);
    expect([...listed].sort()).to.deep.equal([...CONFIG_KEYS].sort());
  });
});
