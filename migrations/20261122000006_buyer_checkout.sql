-- Buyer checkout of auction winnings: the winning bid with its payment window, each Checkout
-- attempt, and the order a successful payment creates (exactly once per bid).

CREATE TABLE winning_bids (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Bids registered with a test API key are test data.
    livemode          boolean NOT NULL,
    -- The tenant's own reference; registering it again returns the same bid.
    reference         text NOT NULL CONSTRAINT winning_bids_reference_length CHECK (char_length(reference) BETWEEN 1 AND 200),
    auction           text NOT NULL,
    lot               text NOT NULL,
    description       text NOT NULL DEFAULT '',
    buyer_email       text NOT NULL,
    amount            bigint NOT NULL CONSTRAINT winning_bids_amount_positive CHECK (amount > 0),
    currency          text NOT NULL CONSTRAINT winning_bids_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    -- Only a hash of the buyer's payment link token is kept.
    token_hash        bytea NOT NULL CONSTRAINT winning_bids_token_key UNIQUE,
    status            text NOT NULL DEFAULT 'awaiting_payment'
                          CONSTRAINT winning_bids_status_known CHECK (status IN ('awaiting_payment', 'paid', 'expired', 'failed')),
    won_at            timestamptz NOT NULL DEFAULT now(),
    pay_by            timestamptz NOT NULL,
    attempts          integer NOT NULL DEFAULT 0 CONSTRAINT winning_bids_attempts_range CHECK (attempts BETWEEN 0 AND 3),
    failures          integer NOT NULL DEFAULT 0,
    -- After a failed attempt, the next may start only from this time (exponential backoff).
    next_attempt_at   timestamptz,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT winning_bids_reference_key UNIQUE (tenant_id, livemode, reference)
);
CREATE INDEX winning_bids_tenant_idx ON winning_bids (tenant_id, created_at DESC);

-- One Stripe Checkout Session per attempt.
CREATE TABLE payment_sessions (
    id                          uuid PRIMARY KEY,
    bid_id                      uuid NOT NULL REFERENCES winning_bids (id) ON DELETE CASCADE,
    attempt                     integer NOT NULL,
    stripe_checkout_session_id  text NOT NULL CONSTRAINT payment_sessions_stripe_id_key UNIQUE,
    url                         text NOT NULL,
    status                      text NOT NULL DEFAULT 'open'
                                    CONSTRAINT payment_sessions_status_known CHECK (status IN ('open', 'complete', 'expired', 'failed')),
    failure_message             text,
    expires_at                  timestamptz NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_sessions_attempt_key UNIQUE (bid_id, attempt)
);

-- The order a paid bid becomes: one per bid, however often its events arrive.
CREATE TABLE orders (
    id                        uuid PRIMARY KEY,
    bid_id                    uuid NOT NULL CONSTRAINT orders_bid_key UNIQUE REFERENCES winning_bids (id) ON DELETE CASCADE,
    tenant_id                 uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    payment_session_id        uuid NOT NULL REFERENCES payment_sessions (id),
    stripe_payment_intent_id  text NOT NULL CONSTRAINT orders_payment_intent_key UNIQUE,
    amount                    bigint NOT NULL,
    currency                  text NOT NULL,
    status                    text NOT NULL DEFAULT 'paid'
                                  CONSTRAINT orders_status_known CHECK (status IN ('paid', 'partially_refunded', 'refunded', 'disputed')),
    refunded_amount           bigint NOT NULL DEFAULT 0,
    created_at                timestamptz NOT NULL DEFAULT now()
);
