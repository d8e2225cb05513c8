/** Masks for merchant-role readers (DESIGN.md "Privacy"). */
export function maskPhone(phone: string | null): string | null {
  if (!phone) return phone;
  // Below 10 characters "first 4 + last 3" would show nearly every digit (1234****678).
  if (phone.length < 10) return `${phone.slice(0, 2)}****`;
  return `${phone.slice(0, 4)}****${phone.slice(-3)}`;
}

export function maskEmail(email: string | null): string | null {
  if (!email) return email;
  const at = email.indexOf('@');
  if (at < 0) return '***';
  return `${email.slice(0, Math.min(2, at))}***${email.slice(at)}`;
}

export function maskName(name: string | null): string | null {
  if (!name) return name;
  const chars = Array.from(name);
  return chars[0] + '*'.repeat(Math.max(1, chars.length - 1));
}

export function maskCardNo(cardNo: string): string {
  return `${cardNo.slice(0, 4)}********${cardNo.slice(-4)}`;
}
