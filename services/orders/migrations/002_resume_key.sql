-- The attempt that last made a PAYMENT_FAILED order payable again
-- (ResumePayment's `idempotency-key` metadata, which PaymentService sets to
-- "CreatePayment:<order id>:<payments recorded so far>"). While the order is
-- still PENDING_PAYMENT from that attempt, a ResumePayment with the same key
-- resumes it again: the attempt never reached a result (the provider was
-- down), so no payment event is on its way. NULL: resumed without a key, or
-- never resumed.
ALTER TABLE orders ADD COLUMN resume_key text;
