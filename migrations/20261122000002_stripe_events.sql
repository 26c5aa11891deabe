-- Every Stripe event Remit has accepted, once per id: the webhook intake inserts here in the same
-- transaction as the changes the event causes, so a repeated delivery changes nothing.
CREATE TABLE stripe_events (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    -- The connected account the event is about, for Connect events.
    account       text,
    livemode      boolean NOT NULL,
    api_version   text,
    created       timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_type_idx ON stripe_events (type, created DESC);
