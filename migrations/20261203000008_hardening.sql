-- Production hardening: Checkout attempts claimed before Stripe is called, suspended tenants and
-- deactivated users, sessions with an absolute lifetime and their device, sign-in throttling per
-- client address, one-time links kept out of stored emails, subscriptions started once, payout
-- link recipients the consultant approved, and counts for the mail Remit sends for tenants.

-- A Checkout attempt is claimed (status `creating`) under the bid's lock before Stripe is asked,
-- and completed with Stripe's session once it answered; at most one claim per bid at a time.
ALTER TABLE payment_sessions
    ALTER COLUMN stripe_checkout_session_id DROP NOT NULL,
    ALTER COLUMN url DROP NOT NULL,
    DROP CONSTRAINT payment_sessions_status_known,
    ADD CONSTRAINT payment_sessions_status_known CHECK (status IN ('creating', 'open', 'complete', 'expired', 'failed')),
    ADD CONSTRAINT payment_sessions_opened CHECK (status = 'creating' OR (stripe_checkout_session_id IS NOT NULL AND url IS NOT NULL));
CREATE UNIQUE INDEX payment_sessions_one_claim ON payment_sessions (bid_id) WHERE status = 'creating';

-- Why a platform admin suspended a tenant (its status is then 'suspended').
ALTER TABLE tenants ADD COLUMN suspended_reason text;

-- A deactivated user cannot sign in; nothing of theirs is deleted.
ALTER TABLE users
    ADD COLUMN deactivated_at timestamptz,
    -- When the person was last told of failed sign-ins to their account, so they are told once a day.
    ADD COLUMN failed_sign_ins_notified_at timestamptz,
    -- Another address a consultant approved for their payout onboarding links (e.g. a bookkeeper).
    ADD COLUMN payout_link_recipient text
        CONSTRAINT users_payout_link_recipient_length CHECK (char_length(payout_link_recipient) BETWEEN 3 AND 254);

-- Sessions end 7 days after sign-in whatever happens; the device and address are shown to the
-- person on their account page.
-- `public_id` names a session on that page without being its id.
ALTER TABLE sessions
    ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT sessions_public_id_key UNIQUE,
    ADD COLUMN absolute_expires_at timestamptz,
    ADD COLUMN user_agent text,
    ADD COLUMN client_ip inet;
UPDATE sessions SET absolute_expires_at = created_at + interval '7 days';
ALTER TABLE sessions ALTER COLUMN absolute_expires_at SET NOT NULL;

-- Sign-in attempts are counted per (email, address) and per address. An attempt is recorded as
-- pending before the password is checked, so concurrent attempts count against the limits.
ALTER TABLE sign_in_failures
    ADD COLUMN client_ip inet,
    ADD COLUMN pending boolean NOT NULL DEFAULT false;
CREATE INDEX sign_in_failures_ip_idx ON sign_in_failures (client_ip, failed_at);

-- A reset or invitation link can be revoked (a newer link, a revoked invitation, a password changed).
ALTER TABLE account_tokens ADD COLUMN revoked_at timestamptz;

-- One-time links in an email are not kept in its body: the body holds placeholders and the links
-- are kept encrypted until the email is sent, then dropped.
ALTER TABLE emails ADD COLUMN secrets bytea;

-- A consultant's subscription Checkout: one open at a time, reused until it expires or completes.
CREATE TABLE subscription_checkouts (
    id                          uuid PRIMARY KEY,
    consultant_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan_id                     uuid NOT NULL REFERENCES plans (id),
    stripe_checkout_session_id  text CONSTRAINT subscription_checkouts_session_key UNIQUE,
    url                         text,
    expires_at                  timestamptz,
    status                      text NOT NULL DEFAULT 'creating'
        CONSTRAINT subscription_checkouts_status_known CHECK (status IN ('creating', 'open', 'closed')),
    created_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscription_checkouts_one_pending ON subscription_checkouts (consultant_id)
    WHERE status IN ('creating', 'open');

-- Mail Remit sends to other people on a tenant's behalf, counted per tenant and hour.
CREATE TABLE tenant_mail_sends (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CONSTRAINT tenant_mail_sends_kind_known CHECK (kind IN ('invitation', 'winning')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_mail_sends_idx ON tenant_mail_sends (tenant_id, kind, created_at);
