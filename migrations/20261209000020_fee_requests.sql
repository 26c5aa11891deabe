-- Consultants bill the clients of their household: a fee request is one amount due, paid through
-- Checkout as a destination charge to the consultant's connected account. A monthly request
-- starts a series; each month's request is a row of its own (`period` months after the first).
CREATE TYPE fee_request_status AS ENUM ('open', 'paid', 'cancelled');
CREATE TYPE fee_recurrence AS ENUM ('once', 'monthly');

CREATE TABLE fee_requests (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    consultant_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description     text NOT NULL CONSTRAINT fee_requests_description_length CHECK (char_length(description) BETWEEN 1 AND 200),
    amount          bigint NOT NULL CONSTRAINT fee_requests_amount_positive CHECK (amount > 0),
    currency        text NOT NULL CONSTRAINT fee_requests_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    due_on          date NOT NULL,
    recurrence      fee_recurrence NOT NULL,
    -- The first request of its series (itself for the first); `period` months after it.
    series_id       uuid NOT NULL REFERENCES fee_requests (id) ON DELETE CASCADE,
    period          integer NOT NULL CONSTRAINT fee_requests_period_nonnegative CHECK (period >= 0),
    status          fee_request_status NOT NULL DEFAULT 'open',
    -- The Stripe mode of the platform when the request was made (fees are the platform's charges).
    livemode        boolean NOT NULL,
    -- Set on the first request of a monthly series when the consultant stops it.
    series_cancelled_at  timestamptz,
    paid_at         timestamptz,
    cancelled_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fee_requests_period_key UNIQUE (series_id, period),
    CONSTRAINT fee_requests_paid_has_time CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
CREATE INDEX fee_requests_consultant_idx ON fee_requests (consultant_id, created_at);
CREATE INDEX fee_requests_client_idx ON fee_requests (client_id, created_at);

-- A fee request's Checkout pages: `creating` while Remit asks Stripe, then Stripe's state. At most
-- one that can still be paid per request, whoever asks and however often.
CREATE TABLE fee_checkouts (
    id                          uuid PRIMARY KEY,
    fee_request_id              uuid NOT NULL REFERENCES fee_requests (id) ON DELETE CASCADE,
    status                      text NOT NULL DEFAULT 'creating'
                                    CONSTRAINT fee_checkouts_status_known CHECK (status IN ('creating', 'open', 'complete', 'expired')),
    stripe_checkout_session_id  text CONSTRAINT fee_checkouts_stripe_id_key UNIQUE,
    url                         text,
    expires_at                  timestamptz NOT NULL,
    failure_message             text,
    created_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX fee_checkouts_one_open ON fee_checkouts (fee_request_id) WHERE status IN ('creating', 'open');

-- A paid fee is an order like a paid winning: receipts, refunds, reports and the reconciliation
-- read orders whatever was paid for. Exactly one of the two is set.
ALTER TABLE orders
    ALTER COLUMN bid_id DROP NOT NULL,
    ALTER COLUMN payment_session_id DROP NOT NULL,
    ADD COLUMN fee_request_id uuid CONSTRAINT orders_fee_request_key UNIQUE REFERENCES fee_requests (id) ON DELETE CASCADE,
    ADD COLUMN fee_checkout_id uuid REFERENCES fee_checkouts (id),
    ADD CONSTRAINT orders_paid_for_one_thing CHECK (
        (bid_id IS NOT NULL AND payment_session_id IS NOT NULL AND fee_request_id IS NULL AND fee_checkout_id IS NULL)
        OR (bid_id IS NULL AND payment_session_id IS NULL AND fee_request_id IS NOT NULL AND fee_checkout_id IS NOT NULL));
