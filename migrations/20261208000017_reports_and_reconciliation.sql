-- What Remit needs to report the money its tenants' buyers moved and to reconcile it every day
-- with Stripe's balance transactions.

-- A paid order's charge, the platform's fee on it and that fee's Stripe id, from the payment
-- Stripe reported (orders made before this change have neither: the reconciliation then
-- matches them by their PaymentIntent).
ALTER TABLE orders
    ADD COLUMN stripe_charge_id           text,
    ADD COLUMN stripe_application_fee_id  text,
    ADD COLUMN application_fee            bigint NOT NULL DEFAULT 0
        CONSTRAINT orders_application_fee_range CHECK (application_fee >= 0);
CREATE INDEX orders_charge_idx ON orders (stripe_charge_id);
CREATE INDEX orders_application_fee_idx ON orders (stripe_application_fee_id);
CREATE INDEX orders_paid_at_idx ON orders (paid_at);

-- The part of the platform's fee a refund gives back, and when Stripe made the refund (by
-- Stripe's clock, as the balance transactions are dated).
ALTER TABLE refunds
    ADD COLUMN application_fee_refunded  bigint NOT NULL DEFAULT 0
        CONSTRAINT refunds_application_fee_refunded_range CHECK (application_fee_refunded >= 0),
    ADD COLUMN stripe_created_at         timestamptz;

-- One reconciliation per day (UTC) and mode; running a day again replaces its differences.
CREATE TABLE reconciliations (
    id           uuid PRIMARY KEY,
    day          date NOT NULL,
    livemode     boolean NOT NULL,
    -- Balance transactions of the day that Remit looked at.
    lines        integer NOT NULL CONSTRAINT reconciliations_lines_range CHECK (lines >= 0),
    differences  integer NOT NULL CONSTRAINT reconciliations_differences_range CHECK (differences >= 0),
    ran_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reconciliations_day_key UNIQUE (day, livemode)
);

CREATE TYPE reconciliation_difference AS ENUM ('missing_in_remit', 'missing_in_stripe', 'amount_mismatch');

CREATE TABLE reconciliation_differences (
    id                 uuid PRIMARY KEY,
    reconciliation_id  uuid NOT NULL REFERENCES reconciliations (id) ON DELETE CASCADE,
    kind               reconciliation_difference NOT NULL,
    -- Stripe's balance transaction type the difference is about (charge, refund, transfer, …).
    line               text NOT NULL,
    -- The Stripe object (charge, refund, dispute, …) or Remit's own record it is about.
    subject            text NOT NULL,
    tenant_id          uuid REFERENCES tenants (id) ON DELETE SET NULL,
    currency           text NOT NULL CONSTRAINT reconciliation_differences_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    stripe_amount      bigint,
    remit_amount       bigint
);
CREATE INDEX reconciliation_differences_run_idx ON reconciliation_differences (reconciliation_id);

-- The winnings a tenant's list and its CSV export show for one filter (every argument NULL
-- narrows nothing): the filter is written once for both. `pattern` is an ILIKE pattern.
CREATE FUNCTION winnings_matching(
    tenant    uuid,
    pattern   text,
    status    text,
    livemode  boolean,
    won_from  timestamptz,
    won_until timestamptz
) RETURNS SETOF winning_bids
LANGUAGE sql STABLE AS $$
    SELECT b.* FROM winning_bids b
    WHERE b.tenant_id = tenant
      AND (pattern IS NULL OR b.reference ILIKE pattern OR b.buyer_email ILIKE pattern OR b.lot ILIKE pattern)
      AND (winnings_matching.status IS NULL OR b.status = winnings_matching.status)
      AND (winnings_matching.livemode IS NULL OR b.livemode = winnings_matching.livemode)
      AND (won_from IS NULL OR b.won_at >= won_from)
      AND (won_until IS NULL OR b.won_at < won_until)
$$;
