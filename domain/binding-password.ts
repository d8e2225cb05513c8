/**
 * Why a binding password is too weak, or undefined. Whoever knows it can bind to a shared card
 * and pay with its balance, so it must resist guessing: at least 8 characters from at least 3 of
 * lower case, upper case, digits and symbols. bcrypt reads at most 72 bytes, so a longer one would
 * silently match its own prefix.
 */
export function bindingPasswordProblem(password: string): string | undefined {
  const bytes = Buffer.byteLength(password);
  if (password.length < 8 || bytes > 72) return 'must be 8 characters to 72 bytes';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((c) => c.test(password)).length;
  if (classes < 3) return 'must mix at least 3 of: lower case, upper case, digits, symbols';
  return undefined;
}
