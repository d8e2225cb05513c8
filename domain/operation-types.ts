/** The operation kinds, which are also the job names on the card partition queues. */
export type OperationType = 'payment' | 'refund' | 'recharge';
