-- The platform's terms for a tenant's buyer payments, set by platform admins.

-- Remit's fee in basis points; NULL follows PLATFORM_FEE_BPS. Applied from the next Checkout attempt.
ALTER TABLE tenants ADD COLUMN platform_fee_bps integer
    CONSTRAINT tenants_platform_fee_bps_range CHECK (platform_fee_bps BETWEEN 0 AND 5000);

-- Amounts above which a payment asks the card issuer for 3D Secure, where a tenant's differ from
-- Remit's table (one row per currency overridden).
CREATE TABLE three_d_secure_thresholds (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    currency   text NOT NULL CONSTRAINT three_d_secure_thresholds_currency_iso CHECK (currency ~ '^[a-z]{3}$'),
    -- Minor units; 0 asks for every payment.
    above      bigint NOT NULL CONSTRAINT three_d_secure_thresholds_above_range CHECK (above >= 0),
    PRIMARY KEY (tenant_id, currency)
);
