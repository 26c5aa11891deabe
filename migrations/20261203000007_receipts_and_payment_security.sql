-- Stripe events are applied by a job after the intake stored them: `applied_at` marks the one
-- transaction that applied each event. Events stored before this change were applied on intake.
ALTER TABLE stripe_events ADD COLUMN applied_at timestamptz;
UPDATE stripe_events SET applied_at = received_at;
CREATE INDEX stripe_events_unapplied_idx ON stripe_events (received_at) WHERE applied_at IS NULL;

-- What Stripe Radar said about the payment that made the order.
ALTER TABLE orders
    ADD COLUMN paid_at     timestamptz,
    ADD COLUMN risk_level  text,
    ADD COLUMN risk_score  integer;
UPDATE orders SET paid_at = created_at;
ALTER TABLE orders ALTER COLUMN paid_at SET NOT NULL, ALTER COLUMN paid_at SET DEFAULT now();

-- Receipt numbers run per tenant without gaps.
CREATE TABLE receipt_counters (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number  bigint NOT NULL
);

-- One PDF receipt per order, kept with its SHA-256 so a download can be checked against it.
CREATE TABLE receipts (
    id                 uuid PRIMARY KEY,
    order_id           uuid NOT NULL CONSTRAINT receipts_order_key UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number             text NOT NULL,
    -- Printed on the receipt; anyone holding the receipt can check it at /receipts/verify.
    verification_code  text NOT NULL CONSTRAINT receipts_verification_code_key UNIQUE,
    sha256             bytea NOT NULL CONSTRAINT receipts_sha256_length CHECK (octet_length(sha256) = 32),
    pdf                bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT receipts_number_key UNIQUE (tenant_id, number)
);

-- Every request to pay (open or reuse a Checkout page), for the velocity checks: per buyer
-- email and per client address within the last hour. Kept for a week.
CREATE TABLE checkout_requests (
    id            uuid PRIMARY KEY,
    bid_id        uuid REFERENCES winning_bids (id) ON DELETE CASCADE,
    buyer_email   text,
    client_ip     inet,
    -- 'accepted', or 'unknown_link' for a token that matches no bid.
    outcome       text NOT NULL CONSTRAINT checkout_requests_outcome_known CHECK (outcome IN ('accepted', 'unknown_link')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_requests_email_idx ON checkout_requests (lower(buyer_email), created_at) WHERE buyer_email IS NOT NULL;
CREATE INDEX checkout_requests_ip_idx ON checkout_requests (client_ip, outcome, created_at);

-- Suspicious activity around payments, for platform admins (and each tenant's staff, for theirs).
CREATE TABLE security_events (
    id           uuid PRIMARY KEY,
    tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    severity     text NOT NULL CONSTRAINT security_events_severity_known CHECK (severity IN ('info', 'warning', 'high')),
    message      text NOT NULL,
    client_ip    inet,
    buyer_email  text,
    bid_id       uuid REFERENCES winning_bids (id) ON DELETE SET NULL,
    -- Makes an event that may be reported twice (a repeated Stripe event) recorded once.
    dedupe_key   text CONSTRAINT security_events_dedupe_key UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_events_created_idx ON security_events (created_at DESC);
CREATE INDEX security_events_tenant_idx ON security_events (tenant_id, created_at DESC);
