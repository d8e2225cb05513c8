/** A period of GET /v1/merchant/reports/daily or /v1/reports/daily, as the API serializes it. */
export interface PeriodJson {
  date: string;
  hour?: number;
  payment_count: number;
  payment_amount: string;
  refund_count: number;
  refund_amount: string;
  recharge_count: number;
  recharge_amount: string;
  net_amount: string;
  distinct_cards: number;
  by_method: Record<string, string>;
  declines: Record<string, number>;
}
