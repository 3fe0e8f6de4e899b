-- Tenant isolation by row-level security. Every transaction of the adapter
-- sets `medsched.tenant` (SET LOCAL / set_config(..., true)); a transaction
-- without it fails instead of seeing nothing or everything. FORCE makes the
-- policies bind the tables' owner too; only superusers and roles with
-- BYPASSRLS escape them, so the runtime role must be neither (see
-- PgStore::grant_runtime_role).

CREATE FUNCTION medsched.current_tenant() RETURNS text
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    t text := current_setting('medsched.tenant', true);
BEGIN
    IF t IS NULL OR t = '' THEN
        RAISE EXCEPTION 'no tenant set for this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN t;
END
$$;

ALTER TABLE medsched.catalogs ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.catalogs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.catalogs
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.appointments ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.appointments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.appointments
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.active_bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.active_bookings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.active_bookings
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.idempotency ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.idempotency FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.idempotency
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.outbox
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.waitlist ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.waitlist FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.waitlist
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());

ALTER TABLE medsched.audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE medsched.audit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON medsched.audit
    USING (tenant_id = medsched.current_tenant())
    WITH CHECK (tenant_id = medsched.current_tenant());
