-- Stripe's event payloads are a few KB each and written at the intake's full rate: PostgreSQL's
-- default compression (pglz) was a noticeable share of the database's CPU under webhook load.
-- lz4 compresses and decompresses several times faster for a slightly larger result. Rows
-- already stored keep theirs. The partitioned table's setting is what partitions made later
-- take; the partitions that exist are changed one by one (the change does not reach them).
ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4;

DO $$
DECLARE
    partition regclass;
BEGIN
    FOR partition IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'stripe_events'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN payload SET COMPRESSION lz4', partition);
    END LOOP;
END
$$;
