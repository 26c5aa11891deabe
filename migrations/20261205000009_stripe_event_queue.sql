-- Stripe's events become their own queue, in a table partitioned by month.
--
-- The intake writes one row per event and nothing else; the applier claims due rows
-- (`next_attempt_at`, `claimed_until`), counts `attempts` and keeps the `last_error` of a failed
-- try. `next_attempt_at` is NULL once the event is applied or given up.
--
-- Partitioned by Stripe's `created` time, which is part of an event's identity (every delivery
-- of an event, and Stripe's events list, carry the same one): the primary key (id, created) is
-- then as unique as the id alone, so duplicates are still refused by the constraint, and a month
-- that has gone past the retention age is dropped whole instead of deleted row by row.

ALTER TABLE stripe_events RENAME TO stripe_events_unpartitioned;
ALTER TABLE stripe_events_unpartitioned RENAME CONSTRAINT stripe_events_pkey TO stripe_events_unpartitioned_pkey;
ALTER INDEX stripe_events_type_idx RENAME TO stripe_events_unpartitioned_type_idx;

CREATE TABLE stripe_events (
    id              text NOT NULL,
    type            text NOT NULL,
    -- The connected account the event is about, for Connect events.
    account         text,
    livemode        boolean NOT NULL,
    api_version     text,
    created         timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    -- Tries so far (counted when claimed, so a process that died mid-try counts).
    attempts        integer NOT NULL DEFAULT 0,
    -- When the event is (next) due; NULL once applied or given up.
    next_attempt_at timestamptz DEFAULT now(),
    -- A process is applying it until then; after that, another may.
    claimed_until   timestamptz,
    last_error      text,
    CONSTRAINT stripe_events_pkey PRIMARY KEY (id, created),
    CONSTRAINT stripe_events_attempts_positive CHECK (attempts >= 0)
) PARTITION BY RANGE (created);

-- Events whose month has no partition (a test clock far ahead, say) are kept here.
CREATE TABLE stripe_events_default PARTITION OF stripe_events DEFAULT;

-- A partition per month from the oldest event kept (at most a year back) to two months ahead;
-- the applier's daily upkeep keeps making them ahead of time.
DO $$
DECLARE
    month date;
BEGIN
    FOR month IN
        SELECT generate_series(
            date_trunc('month', GREATEST(
                LEAST((SELECT min(created) FROM stripe_events_unpartitioned), now()),
                now() - interval '1 year')),
            date_trunc('month', now()) + interval '2 months',
            interval '1 month')::date
    LOOP
        EXECUTE format(
            'CREATE TABLE stripe_events_%s PARTITION OF stripe_events FOR VALUES FROM (%L) TO (%L)',
            to_char(month, 'YYYY_MM'), month, month + interval '1 month');
    END LOOP;
END
$$;

INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload, received_at, applied_at,
                           next_attempt_at)
SELECT id, type, account, livemode, api_version, created, payload, received_at, applied_at,
       CASE WHEN applied_at IS NULL THEN received_at END
FROM stripe_events_unpartitioned;
DROP TABLE stripe_events_unpartitioned;

-- The applier's queue: unapplied events by when they are due. The only index beside the key:
-- every index is paid for by each event the intake stores (the old index by type served no query).
CREATE INDEX stripe_events_due_idx ON stripe_events (next_attempt_at) WHERE applied_at IS NULL;

-- How far each account's events list has been read by the resync ('platform', or a connected
-- account's id): the next listing starts there, less an overlap.
CREATE TABLE stripe_event_cursors (
    scope        text PRIMARY KEY,
    listed_until timestamptz NOT NULL
);

-- Jobs the old queue held for events are not needed: an unapplied event is its own queue entry.
DO $$
BEGIN
    IF to_regclass('graphile_worker._private_jobs') IS NOT NULL THEN
        DELETE FROM graphile_worker._private_jobs
        WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'apply_stripe_event');
    END IF;
END
$$;
