/**
 * Points to claw back for one refund, so that after any sequence of partial refunds the total
 * clawed equals floor(points_earned × refunded_total / final) — never more, whatever the split —
 * and never more than the card holds now.
 */
export function pointsClawback(p: {
  pointsEarned: number;
  finalMinor: number;
  refundedBeforeMinor: number;
  refundMinor: number;
  cardPoints: number;
}): number {
  if (p.finalMinor <= 0 || p.pointsEarned <= 0) return 0;
  const target = (refunded: number) => Math.floor((p.pointsEarned * refunded) / p.finalMinor);
  const due = target(p.refundedBeforeMinor + p.refundMinor) - target(p.refundedBeforeMinor);
  return Math.max(0, Math.min(due, p.cardPoints));
}

export type PaymentStatus = 'completed' | 'partially_refunded' | 'refunded';

export function paymentStatusAfterRefund(finalMinor: number, refundedTotalMinor: number): PaymentStatus {
  if (refundedTotalMinor <= 0) return 'completed';
  return refundedTotalMinor >= finalMinor ? 'refunded' : 'partially_refunded';
}
