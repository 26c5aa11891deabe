-- Tenants, users, sessions, sign-in throttling, one-time account tokens, mail.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CONSTRAINT tenants_name_length CHECK (char_length(name) BETWEEN 1 AND 120),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL CONSTRAINT users_email_length CHECK (char_length(email) BETWEEN 3 AND 254),
    display_name   text NOT NULL CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 120),
    role           text NOT NULL CONSTRAINT users_role_known
                   CHECK (role IN ('platform_admin', 'tenant_owner', 'tenant_admin', 'consultant', 'family_member')),
    -- A family member belongs to exactly one consultant of the same tenant.
    consultant_id  uuid REFERENCES users (id) ON DELETE CASCADE,
    -- NULL until an invited user chooses a password.
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_tenant_matches_role CHECK ((role = 'platform_admin') = (tenant_id IS NULL)),
    CONSTRAINT users_consultant_matches_role CHECK ((role = 'family_member') = (consultant_id IS NOT NULL))
);
-- One account per email address, whatever its case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_tenant_idx ON users (tenant_id);
CREATE INDEX users_consultant_idx ON users (consultant_id) WHERE consultant_id IS NOT NULL;

-- Server-side sessions. Only the SHA-256 of the session id is stored.
CREATE TABLE sessions (
    id_hash       bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Failed sign-ins per normalised email, counted over a rolling window by every server process.
CREATE TABLE sign_in_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key  text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email_key, failed_at);

-- Single-use links that let a person choose a password: "forgot password" and invitations.
CREATE TABLE account_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CONSTRAINT account_tokens_purpose_known CHECK (purpose IN ('password_reset', 'invitation')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id);

-- Every email Remit sends. Delivery happens in a job; `transport` says where it went.
CREATE TABLE emails (
    id           uuid PRIMARY KEY,
    tenant_id    uuid REFERENCES tenants (id) ON DELETE SET NULL,
    to_address   text NOT NULL,
    subject      text NOT NULL,
    text_body    text NOT NULL,
    status       text NOT NULL DEFAULT 'queued' CONSTRAINT emails_status_known CHECK (status IN ('queued', 'sent', 'failed')),
    transport    text CONSTRAINT emails_transport_known CHECK (transport IN ('smtp', 'outbox')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX emails_created_idx ON emails (created_at DESC);

CREATE TABLE email_attachments (
    id            uuid PRIMARY KEY,
    email_id      uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    content       bytea NOT NULL
);
CREATE INDEX email_attachments_email_idx ON email_attachments (email_id);
