-- Winnings a tenant manages: cancelled, extended once; the emails each buyer was sent.

ALTER TABLE winning_bids DROP CONSTRAINT winning_bids_status_known;
ALTER TABLE winning_bids ADD CONSTRAINT winning_bids_status_known
    CHECK (status IN ('awaiting_payment', 'paid', 'expired', 'failed', 'cancelled'));
ALTER TABLE winning_bids
    ADD COLUMN extended_at    timestamptz,
    ADD COLUMN cancelled_at   timestamptz,
    ADD COLUMN cancel_reason  text;
CREATE INDEX winning_bids_tenant_won_idx ON winning_bids (tenant_id, won_at DESC, id DESC);

CREATE TYPE buyer_email_kind AS ENUM (
    'payment_link', 'link_resent', 'reminder', 'payment_failed', 'window_closed', 'window_extended',
    'cancelled', 'receipt', 'credit_note'
);

-- Which emails went to a winning's buyer, for its timeline; `dedupe_key` makes a scheduled email
-- (a reminder for one deadline) go once however often its job runs.
CREATE TABLE winning_emails (
    email_id    uuid PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
    bid_id      uuid NOT NULL REFERENCES winning_bids (id) ON DELETE CASCADE,
    kind        buyer_email_kind NOT NULL,
    dedupe_key  text CONSTRAINT winning_emails_dedupe_key UNIQUE
);
CREATE INDEX winning_emails_bid_idx ON winning_emails (bid_id);

-- The buyer's payment link token, sealed with REMIT_ENCRYPTION_KEY, while the winning awaits
-- payment: reminders and failure emails carry the link again. Cleared once the winning is paid,
-- expired, failed or cancelled (only its hash is kept then).
ALTER TABLE winning_bids ADD COLUMN token_sealed bytea;
