-- How each Account Session request ended (FG-003: an alert when more than 5 % fail within an
-- hour). Requests refused before Stripe is asked for reasons of their own (no payment account,
-- no subscription) are not Account Session requests and are not recorded.
CREATE TYPE account_session_outcome AS ENUM ('succeeded', 'stripe_error', 'timed_out', 'rate_limited');

CREATE TABLE account_session_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    outcome     account_session_outcome NOT NULL,
    -- Stripe's error in words (its code and status, never the request or a secret).
    reason      text CONSTRAINT account_session_requests_reason_length CHECK (char_length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_session_requests_created_idx ON account_session_requests (created_at);
