-- Refunds of buyers' payments, their credit notes, and the disputes Stripe reports.

-- Whether a refund gives back the platform's application fee in proportion (Stripe's
-- `refund_application_fee`). The platform admin's choice per tenant; by default it does.
ALTER TABLE tenants ADD COLUMN refund_application_fee boolean NOT NULL DEFAULT true;

-- `requested`: Remit has claimed the amount and is asking Stripe (the row goes if Stripe
-- refuses); then Stripe's own states.
CREATE TYPE refund_status AS ENUM ('requested', 'pending', 'succeeded', 'failed', 'canceled');

CREATE TABLE refunds (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id           uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    livemode           boolean NOT NULL,
    amount             bigint NOT NULL CONSTRAINT refunds_amount_positive CHECK (amount > 0),
    currency           text NOT NULL CONSTRAINT refunds_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    -- The tenant's words (printed on the credit note); Stripe's reason code beside it.
    reason             text NOT NULL,
    stripe_reason      text,
    status             refund_status NOT NULL,
    stripe_refund_id   text CONSTRAINT refunds_stripe_id_key UNIQUE,
    failure_reason     text,
    -- The caller's Idempotency-Key and a hash of what it asked, so a repeat with another body is refused.
    idempotency_key    text,
    request_hash       bytea,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_idempotency_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT refunds_requested_unsent CHECK ((status = 'requested') = (stripe_refund_id IS NULL))
);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);

-- Credit notes: one per succeeded refund, numbered per tenant without gaps (the counter moves
-- in the transaction that stores the note).
CREATE TABLE credit_note_counters (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number  bigint NOT NULL
);

CREATE TABLE credit_notes (
    id                 uuid PRIMARY KEY,
    refund_id          uuid NOT NULL CONSTRAINT credit_notes_refund_key UNIQUE REFERENCES refunds (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number             text NOT NULL,
    verification_code  text NOT NULL CONSTRAINT credit_notes_verification_code_key UNIQUE,
    sha256             bytea NOT NULL CONSTRAINT credit_notes_sha256_length CHECK (octet_length(sha256) = 32),
    pdf                bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_notes_number_key UNIQUE (tenant_id, number)
);

-- Disputes as Stripe reports them, one row per Stripe dispute, kept current by its events.
CREATE TABLE disputes (
    stripe_dispute_id  text PRIMARY KEY,
    order_id           uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    amount             bigint NOT NULL,
    currency           text NOT NULL,
    reason             text NOT NULL,
    status             text NOT NULL,
    evidence_due_by    timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disputes_order_idx ON disputes (order_id);
