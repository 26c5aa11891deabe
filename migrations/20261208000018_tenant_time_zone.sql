-- The time zone a tenant's staff read times in (an IANA name); UTC until its owner sets one.
ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
    CONSTRAINT tenants_time_zone_length CHECK (char_length(time_zone) BETWEEN 1 AND 64);
