-- Flow control per webhook endpoint: the rate the tenant allows, and a circuit breaker that
-- pauses an endpoint failing every attempt and probes it at growing intervals.
ALTER TABLE webhook_endpoints
    -- Deliveries a second the tenant allows (NULL: no limit).
    ADD COLUMN rate_limit integer CONSTRAINT webhook_endpoints_rate_limit_range CHECK (rate_limit BETWEEN 1 AND 1000),
    -- The generic cell rate algorithm's "theoretical arrival time": when the next send would be due
    -- if every send so far had gone at exactly the limit. A send is allowed while it is less than a
    -- second ahead of now, so a second's worth may go at once and then the limit holds.
    ADD COLUMN rate_tat timestamptz,
    -- Failed attempts since the last success.
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    -- The circuit is open (nothing is sent) until then; after it, one delivery probes.
    ADD COLUMN paused_until timestamptz,
    -- The last pause, which the next failed probe doubles.
    ADD COLUMN pause_seconds integer;
