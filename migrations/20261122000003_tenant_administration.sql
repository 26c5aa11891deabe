-- Tenant administration: Stripe Connect, API keys, outbound webhooks, audit log, metrics, alerts.

ALTER TABLE tenants
    ADD COLUMN status text NOT NULL DEFAULT 'onboarding'
        CONSTRAINT tenants_status_known CHECK (status IN ('onboarding', 'active', 'suspended'));

-- The tenant's own Stripe account, connected through OAuth. At most one per tenant, and an
-- account belongs to one tenant.
CREATE TABLE tenant_stripe_accounts (
    tenant_id           uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    stripe_account_id   text NOT NULL CONSTRAINT tenant_stripe_accounts_account_key UNIQUE,
    connected_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    connected_at        timestamptz NOT NULL DEFAULT now(),
    charges_enabled     boolean NOT NULL DEFAULT false,
    payouts_enabled     boolean NOT NULL DEFAULT false,
    details_submitted   boolean NOT NULL DEFAULT false,
    requirements        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The time of the Stripe state above (an event's `created`, or when it was read live), so an
    -- older event never overwrites newer state.
    status_as_of        timestamptz NOT NULL DEFAULT date_trunc('second', now())
);

-- Single-use OAuth states, bound to the session and user that started the connection.
CREATE TABLE oauth_states (
    state_hash    bytea PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash  bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

-- API keys: only a SHA-256 of the key is kept; `prefix` (not secret) finds it.
CREATE TABLE api_keys (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mode           text NOT NULL CONSTRAINT api_keys_mode_known CHECK (mode IN ('live', 'test')),
    prefix         text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    secret_hash    bytea NOT NULL,
    last4          text NOT NULL,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    revoked_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    revoke_reason  text,
    CONSTRAINT api_keys_revocation_complete CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC);

-- Who did what, when and why.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE SET NULL,
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    -- Kept as text so the entry stays readable after the actor is deleted.
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text,
    reason      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, created_at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, created_at DESC);

-- The tenant's webhook endpoint (one per tenant), its secret encrypted with REMIT_ENCRYPTION_KEY.
CREATE TABLE webhook_endpoints (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL CONSTRAINT webhook_endpoints_tenant_key UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULL after the tenant removes the URL; the secret is kept for when they set one again.
    url                   text,
    secret_encrypted      bytea NOT NULL,
    secret_last4          text NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Events Remit sends to tenants; `livemode` follows the data they are about.
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type        text NOT NULL,
    livemode    boolean NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_tenant_idx ON webhook_events (tenant_id, created_at DESC);

-- Every attempt to deliver an event (and every test delivery).
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id          uuid REFERENCES webhook_events (id) ON DELETE CASCADE,
    event_type        text NOT NULL,
    attempt           integer NOT NULL,
    status_code       integer,
    response_time_ms  integer,
    error             text,
    succeeded         boolean NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

-- Every payment outcome (buyer checkouts, subscription invoices), for success rates and charts.
CREATE TABLE payment_outcomes (
    id           uuid PRIMARY KEY,
    tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
    livemode     boolean NOT NULL,
    source       text NOT NULL CONSTRAINT payment_outcomes_source_known CHECK (source IN ('checkout', 'subscription')),
    succeeded    boolean NOT NULL,
    amount       bigint NOT NULL CONSTRAINT payment_outcomes_amount_nonnegative CHECK (amount >= 0),
    currency     text NOT NULL CONSTRAINT payment_outcomes_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    reference    text NOT NULL,
    failure_code text,
    occurred_at  timestamptz NOT NULL,
    -- One outcome per payment attempt (a reference names one attempt), however often its event arrives.
    CONSTRAINT payment_outcomes_reference_key UNIQUE (reference)
);
CREATE INDEX payment_outcomes_tenant_idx ON payment_outcomes (tenant_id, occurred_at DESC);

-- Alerts raised for platform admins (payment failure rate, webhook endpoints disabled, fraud).
CREATE TABLE alerts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    message     text NOT NULL,
    -- One alert of a kind per tenant per day.
    dedupe_key  text NOT NULL CONSTRAINT alerts_dedupe_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX alerts_created_idx ON alerts (created_at DESC);

-- One-time values shown after a form post (a new API key's secret), encrypted, bound to a session.
CREATE TABLE session_flash (
    id            uuid PRIMARY KEY,
    session_hash  bytea NOT NULL,
    kind          text NOT NULL,
    payload       bytea NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX session_flash_session_idx ON session_flash (session_hash, kind);
