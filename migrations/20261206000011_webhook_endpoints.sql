-- Tenants' webhooks as a webhook service runs them: several endpoints per tenant and mode, each
-- with the event types it wants and its own secret (and, for a while after a rotation, the
-- previous one); every event recorded once with its object's sequence; one delivery per event and
-- endpoint, which is its own queue; every HTTP attempt logged with the receiver's answer.

-- Endpoints. A removed URL used to stay as a row without one; a removed endpoint is now deleted.
DELETE FROM webhook_endpoints WHERE url IS NULL;
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_tenant_key;
UPDATE webhook_endpoints SET disabled_reason = 'failing' WHERE disabled_reason IS NOT NULL;
ALTER TABLE webhook_endpoints
    ALTER COLUMN url SET NOT NULL,
    ADD COLUMN livemode boolean NOT NULL DEFAULT false,
    ADD COLUMN description text NOT NULL DEFAULT '',
    -- NULL: every event type; otherwise the types it receives.
    ADD COLUMN event_types text[],
    -- After a rotation the previous secret signs beside the new one until then.
    ADD COLUMN previous_secret_encrypted bytea,
    ADD COLUMN previous_secret_expires_at timestamptz,
    -- Since when every attempt has failed (NULL after a success); five days of it disables.
    ADD COLUMN failing_since timestamptz,
    -- When the owners were told it would be disabled the next day (once per failing spell).
    ADD COLUMN failure_warned_at timestamptz,
    DROP COLUMN consecutive_failures,
    ADD CONSTRAINT webhook_endpoints_disabled_reason_known
        CHECK (disabled_reason IN ('failing', 'gone', 'by_owner')),
    ADD CONSTRAINT webhook_endpoints_description_length CHECK (length(description) <= 200),
    ADD CONSTRAINT webhook_endpoints_previous_secret_expires
        CHECK ((previous_secret_encrypted IS NULL) = (previous_secret_expires_at IS NULL));
ALTER TABLE webhook_endpoints ALTER COLUMN livemode DROP DEFAULT;

-- An endpoint from before received the events of both modes: the test-mode copy keeps its id
-- and history, and a live-mode copy with the same URL and secret takes live events.
INSERT INTO webhook_endpoints (id, tenant_id, url, secret_encrypted, secret_last4, enabled, disabled_reason,
                               created_at, updated_at, livemode, description)
SELECT gen_random_uuid(), tenant_id, url, secret_encrypted, secret_last4, enabled, disabled_reason,
       created_at, updated_at, true, description
FROM webhook_endpoints;
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id, livemode);

-- Events: which object each is about, its place in that object's sequence, and the event before.
ALTER TABLE webhook_events
    ADD COLUMN object_type text,
    ADD COLUMN object_id text,
    ADD COLUMN sequence bigint,
    ADD COLUMN previous_event_id uuid;

-- Each object's last sequence number and event: the row is locked by the transaction that
-- records the object's next event, so concurrent events for one object are numbered in order.
CREATE TABLE webhook_object_sequences (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    last_sequence bigint NOT NULL,
    last_event_id uuid,
    PRIMARY KEY (tenant_id, object_type, object_id)
);

-- The attempts log was called deliveries; a delivery is now an event owed to one endpoint.
ALTER TABLE webhook_deliveries RENAME TO webhook_attempts;
ALTER TABLE webhook_attempts RENAME CONSTRAINT webhook_deliveries_pkey TO webhook_attempts_pkey;
ALTER INDEX webhook_deliveries_endpoint_idx RENAME TO webhook_attempts_endpoint_idx;

CREATE TYPE webhook_delivery_status AS ENUM ('pending', 'succeeded', 'failed');

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- pending until the receiver answers 2xx (succeeded) or the schedule runs out (failed).
    status          webhook_delivery_status NOT NULL DEFAULT 'pending',
    -- Attempts on the current schedule (a redelivery starts a new one).
    attempts        integer NOT NULL DEFAULT 0,
    -- When the next attempt is due; NULL when none is.
    next_attempt_at timestamptz DEFAULT now(),
    -- A process is posting it until then; after that, another may.
    claimed_until   timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    -- Each event is owed once to each endpoint: replays and redeliveries reuse the row.
    CONSTRAINT webhook_deliveries_once UNIQUE (event_id, endpoint_id),
    CONSTRAINT webhook_deliveries_attempts_positive CHECK (attempts >= 0)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

-- The deliveries the old attempts log implies.
INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at, delivered_at)
SELECT gen_random_uuid(), event_id, endpoint_id,
       (CASE WHEN bool_or(succeeded) THEN 'succeeded' ELSE 'failed' END)::webhook_delivery_status,
       count(*), NULL, min(created_at), max(created_at) FILTER (WHERE succeeded)
FROM webhook_attempts
WHERE event_id IS NOT NULL
GROUP BY event_id, endpoint_id;

ALTER TABLE webhook_attempts
    ADD COLUMN delivery_id uuid REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    -- The receiver's answer: the first KiB of its body and its headers.
    ADD COLUMN response_body text,
    ADD COLUMN response_headers jsonb;
UPDATE webhook_attempts a SET delivery_id = d.id
FROM webhook_deliveries d WHERE d.event_id = a.event_id AND d.endpoint_id = a.endpoint_id;
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, created_at);

-- Deliveries the old job queue still held become due deliveries to every enabled endpoint of the
-- event's tenant and mode; their jobs go.
DO $$
BEGIN
    IF to_regclass('graphile_worker._private_jobs') IS NOT NULL THEN
        INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
        SELECT gen_random_uuid(), ev.id, e.id
        FROM graphile_worker._private_jobs j
        JOIN graphile_worker._private_tasks t ON t.id = j.task_id AND t.identifier = 'deliver_webhook'
        JOIN webhook_events ev ON ev.id = (j.payload ->> 'event_id')::uuid
        JOIN webhook_endpoints e ON e.tenant_id = ev.tenant_id AND e.livemode = ev.livemode AND e.enabled
        ON CONFLICT (event_id, endpoint_id) DO UPDATE
            SET status = 'pending', attempts = 0, next_attempt_at = now();
        DELETE FROM graphile_worker._private_jobs
        WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'deliver_webhook');
    END IF;
END
$$;
