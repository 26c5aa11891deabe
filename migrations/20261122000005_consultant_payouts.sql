-- Consultants' payout accounts (Stripe Connect) and the Account Sessions made for them.

-- One connected account per consultant, ever, and an account belongs to one consultant.
CREATE TABLE consultant_accounts (
    user_id             uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    stripe_account_id   text NOT NULL CONSTRAINT consultant_accounts_stripe_id_key UNIQUE,
    charges_enabled     boolean NOT NULL DEFAULT false,
    payouts_enabled     boolean NOT NULL DEFAULT false,
    details_submitted   boolean NOT NULL DEFAULT false,
    requirements        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The time of the state above (an event's `created`, or when it was read), so an older
    -- event never overwrites newer state.
    status_as_of        timestamptz NOT NULL DEFAULT date_trunc('second', now()),
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- When Account Sessions were made, for the per-consultant hourly limit. The session's
-- client secret is never stored.
CREATE TABLE account_session_grants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_session_grants_user_idx ON account_session_grants (user_id, created_at);

-- One-time links for hosted onboarding (Stripe Account Links) of a consultant's account, issued
-- by the consultant or their tenant's staff. Only hashes of the token and of the callback state
-- are kept.
CREATE TABLE onboarding_tokens (
    id              uuid PRIMARY KEY,
    token_hash      bytea NOT NULL CONSTRAINT onboarding_tokens_token_key UNIQUE,
    consultant_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    recipient_email text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                        CONSTRAINT onboarding_tokens_status_known CHECK (status IN ('pending', 'in_progress', 'completed')),
    state_hash      bytea CONSTRAINT onboarding_tokens_state_key UNIQUE,
    -- pending: until when the link may be opened; in_progress: until when Stripe may send the
    -- person back (return or refresh).
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT onboarding_tokens_state_when_started CHECK ((status = 'pending') = (state_hash IS NULL))
);
CREATE INDEX onboarding_tokens_consultant_idx ON onboarding_tokens (consultant_id, created_at DESC);
