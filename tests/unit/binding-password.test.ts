import { expect } from 'chai';
import { bindingPasswordProblem } from '../../domain/binding-password.js';

/** The binding password rule (API.md POST /v1/cards/:id/binding-password): ≥ 8 characters from 3 of 4 classes, ≤ 72 bytes. */
describe('unit: binding password strength', () => {
  it('accepts 8+ characters from at least 3 of lower case, upper case, digits and symbols', () => {
    for (const ok of ['Abcdefg1', 'abcdefg1!', 'ABCDEFG1!', 'Abcdefg!', 'family-123456', 'Ünïcödé-1a']) expect(bindingPasswordProblem(ok), ok).to.equal(undefined);
  });

  it('refuses fewer than 8 characters whatever their classes', () => {
    for (const short of ['', 'Ab1!', 'Ab1!xyz']) expect(bindingPasswordProblem(short), short).to.match(/8 characters/);
  });

  it('refuses fewer than 3 classes, however long', () => {
    for (const weak of ['abcdefgh', 'abcdefg1', 'ABCDEFGH1', '12345678!', 'abcdefghijklmnopqrstuvwxyz', '!!!!!!!!aaaa']) expect(bindingPasswordProblem(weak), weak).to.match(/at least 3/);
  });

  it('refuses more than 72 bytes (bcrypt would match its prefix), counting bytes, not characters', () => {
    expect(bindingPasswordProblem(`Aa1!${'x'.repeat(68)}`)).to.equal(undefined);
    expect(bindingPasswordProblem(`Aa1!${'x'.repeat(69)}`)).to.match(/72 bytes/);
    // 36 two-byte characters are 72 bytes; one more is over, although only 37 characters long.
    expect(bindingPasswordProblem(`Aa1${'é'.repeat(34)}!`)).to.equal(undefined);
    expect(bindingPasswordProblem(`Aa1${'é'.repeat(35)}!`)).to.match(/72 bytes/);
  });
});
