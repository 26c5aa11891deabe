-- Subscription billing: the plans consultants subscribe to, their Stripe customers, subscriptions,
-- invoices, payment attempts and saved cards. Money is in minor units with an ISO currency.

-- A plan is a Stripe product with one recurring price, defined by a platform admin.
CREATE TABLE plans (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL CONSTRAINT plans_name_length CHECK (char_length(name) BETWEEN 1 AND 80),
    description        text NOT NULL DEFAULT '',
    stripe_product_id  text NOT NULL CONSTRAINT plans_stripe_product_key UNIQUE,
    stripe_price_id    text NOT NULL CONSTRAINT plans_stripe_price_key UNIQUE,
    amount             bigint NOT NULL CONSTRAINT plans_amount_positive CHECK (amount > 0),
    currency           text NOT NULL CONSTRAINT plans_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    "interval"         text NOT NULL CONSTRAINT plans_interval_known CHECK ("interval" IN ('month', 'year')),
    trial_days         integer NOT NULL DEFAULT 0 CONSTRAINT plans_trial_days_range CHECK (trial_days BETWEEN 0 AND 730),
    active             boolean NOT NULL DEFAULT true,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_active_name_key ON plans (lower(name)) WHERE active;

-- The Stripe customer of a user who pays Remit (a consultant): one per user, ever.
CREATE TABLE stripe_customers (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL CONSTRAINT stripe_customers_user_key UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    stripe_customer_id      text NOT NULL CONSTRAINT stripe_customers_stripe_id_key UNIQUE,
    email                   text NOT NULL,
    default_payment_method  text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Saved cards, as Stripe reports them (brand and last four digits only: no card data).
CREATE TABLE payment_methods (
    id                        uuid PRIMARY KEY,
    customer_id               uuid NOT NULL REFERENCES stripe_customers (id) ON DELETE CASCADE,
    stripe_payment_method_id  text NOT NULL CONSTRAINT payment_methods_stripe_id_key UNIQUE,
    brand                     text NOT NULL,
    last4                     text NOT NULL,
    exp_month                 integer NOT NULL,
    exp_year                  integer NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_methods_customer_idx ON payment_methods (customer_id);

-- A subscription as last read from Stripe. `state_as_of` is when that state was read, so a
-- slower reader never overwrites what a later one stored.
CREATE TABLE subscriptions (
    id                      uuid PRIMARY KEY,
    stripe_subscription_id  text NOT NULL CONSTRAINT subscriptions_stripe_id_key UNIQUE,
    customer_id             uuid NOT NULL REFERENCES stripe_customers (id) ON DELETE CASCADE,
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id               uuid REFERENCES tenants (id) ON DELETE SET NULL,
    plan_id                 uuid REFERENCES plans (id) ON DELETE SET NULL,
    stripe_price_id         text NOT NULL,
    amount                  bigint NOT NULL CONSTRAINT subscriptions_amount_nonnegative CHECK (amount >= 0),
    currency                text NOT NULL CONSTRAINT subscriptions_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    "interval"              text NOT NULL,
    status                  text NOT NULL CONSTRAINT subscriptions_status_known CHECK (status IN
                                ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start    timestamptz,
    current_period_end      timestamptz,
    trial_end               timestamptz,
    cancel_at_period_end    boolean NOT NULL DEFAULT false,
    canceled_at             timestamptz,
    ended_at                timestamptz,
    started_at              timestamptz NOT NULL,
    latest_invoice          text,
    state_as_of             timestamptz NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, created_at DESC);
CREATE INDEX subscriptions_status_idx ON subscriptions (status);

CREATE TABLE invoices (
    id                  uuid PRIMARY KEY,
    stripe_invoice_id   text NOT NULL CONSTRAINT invoices_stripe_id_key UNIQUE,
    customer_id         uuid NOT NULL REFERENCES stripe_customers (id) ON DELETE CASCADE,
    subscription_id     uuid REFERENCES subscriptions (id) ON DELETE SET NULL,
    number              text,
    status              text NOT NULL,
    amount_due          bigint NOT NULL CONSTRAINT invoices_amount_due_nonnegative CHECK (amount_due >= 0),
    amount_paid         bigint NOT NULL CONSTRAINT invoices_amount_paid_nonnegative CHECK (amount_paid >= 0),
    currency            text NOT NULL CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    attempt_count       integer NOT NULL DEFAULT 0,
    hosted_invoice_url  text,
    invoice_pdf         text,
    period_start        timestamptz,
    period_end          timestamptz,
    due_date            timestamptz,
    next_payment_attempt timestamptz,
    paid_at             timestamptz,
    stripe_created_at   timestamptz NOT NULL,
    state_as_of         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_customer_idx ON invoices (customer_id, stripe_created_at DESC);

-- Every attempt to collect an invoice (one PaymentIntent each).
CREATE TABLE payment_transactions (
    id                        uuid PRIMARY KEY,
    stripe_payment_intent_id  text NOT NULL CONSTRAINT payment_transactions_stripe_id_key UNIQUE,
    customer_id               uuid NOT NULL REFERENCES stripe_customers (id) ON DELETE CASCADE,
    subscription_id           uuid REFERENCES subscriptions (id) ON DELETE SET NULL,
    invoice_id                uuid REFERENCES invoices (id) ON DELETE SET NULL,
    amount                    bigint NOT NULL CONSTRAINT payment_transactions_amount_nonnegative CHECK (amount >= 0),
    currency                  text NOT NULL CONSTRAINT payment_transactions_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    status                    text NOT NULL,
    payment_method_id         text,
    failure_code              text,
    failure_message           text,
    stripe_created_at         timestamptz NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_transactions_customer_idx ON payment_transactions (customer_id, stripe_created_at DESC);
