-- Schema version 4: range look-ups that row-level security cannot turn into
-- scans, and a booking in one round trip.
--
-- Under row-level security PostgreSQL applies a query's own conditions
-- after the policy's unless their operators are leakproof. The range
-- operator && is not, so `busy && tstzrange(..)` could not be an index
-- condition: every overlap look-up read all rows of the resource, its whole
-- history. The busy span's bounds are now also plain columns, compared with
-- leakproof timestamptz operators, and the primary key leads with (tenant,
-- resource, busy end): the rows that end after a window's start are the
-- resource's present and future rows only. An empty span overlaps nothing
-- (its end is -infinity, its start infinity).
ALTER TABLE medsched.active_bookings
    ADD COLUMN busy_lo timestamptz NOT NULL
        GENERATED ALWAYS AS (CASE WHEN isempty(busy) THEN 'infinity'::timestamptz
                                  ELSE lower(busy) END) STORED,
    ADD COLUMN busy_hi timestamptz NOT NULL
        GENERATED ALWAYS AS (CASE WHEN isempty(busy) THEN '-infinity'::timestamptz
                                  ELSE upper(busy) END) STORED;
ALTER TABLE medsched.active_bookings DROP CONSTRAINT active_bookings_pkey;
-- Active rows are written only with their appointment, in its transaction;
-- the foreign key's check cost about a tenth of a booking's time.
ALTER TABLE medsched.active_bookings
    DROP CONSTRAINT active_bookings_tenant_id_appointment_key_fkey;
DROP INDEX medsched.active_bookings_by_resource;
ALTER TABLE medsched.active_bookings
    ADD CONSTRAINT active_bookings_pkey
        PRIMARY KEY (tenant_id, resource_id, busy_hi, appointment_key) INCLUDE (busy_lo);
-- The appointment record is its columns: the JSON copy of it (without
-- PHI) that version 1 also kept was a third of a booking's WAL.
ALTER TABLE medsched.appointments DROP COLUMN doc;

-- An appointment's own rows (moved or released by an update).
CREATE INDEX active_bookings_by_appointment
    ON medsched.active_bookings (tenant_id, appointment_key);
-- Holds, whose lapsed rows are removed before a claim is checked.
CREATE INDEX active_bookings_holds
    ON medsched.active_bookings (tenant_id, resource_id, hold_expires_at)
    WHERE hold_expires_at IS NOT NULL;

-- The hash of an audit record, as medsched_storage::chain_hash computes it:
-- SHA-256 over each part's UTF-8 length (8 bytes, big-endian) and bytes.
CREATE FUNCTION medsched.audit_hash(
    prev text, seq bigint, at timestamptz, actor text, action text, record text,
    decision text, reason_code text, policy_version text, break_glass boolean
) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT encode(sha256(string_agg(int8send(octet_length(b)::bigint) || b, ''::bytea
                                    ORDER BY n)), 'hex')
    FROM unnest(ARRAY[
        convert_to(prev, 'UTF8'),
        convert_to(seq::text, 'UTF8'),
        convert_to(((extract(epoch FROM at) * 1000000)::bigint)::text, 'UTF8'),
        convert_to(actor, 'UTF8'),
        convert_to(action, 'UTF8'),
        convert_to(record, 'UTF8'),
        convert_to(decision, 'UTF8'),
        convert_to(reason_code, 'UTF8'),
        convert_to(policy_version, 'UTF8'),
        convert_to(CASE WHEN break_glass THEN '1' ELSE '0' END, 'UTF8')
    ]) WITH ORDINALITY AS p(b, n)
$$;

-- A batch that inserts one appointment (with capacity-one claims, or
-- overbooked, or unclaimed), emits events and appends audit records, in
-- one statement: with autocommit, one round trip. It does exactly what the
-- adapter's statement-by-statement path does for such a batch (see
-- src/store.rs, `commit_insert`), in the same lock order: the idempotency
-- key, the claimed resources (sorted by the caller), the tenant's audit
-- chain. Outcomes other than success are raised with medsched's own
-- SQLSTATEs, rolling everything back:
--   MS001 slot taken (message: the resource id)
--   MS002 the appointment id exists
--   MS003 the idempotency key has a recorded result (the caller replays it)
-- PHI arrives encrypted (or as version-0 plaintext) from the caller.
CREATE FUNCTION medsched.commit_insert(
    p_tenant text, p_now timestamptz,
    p_idem_key text, p_idem_fingerprint text, p_idem_result jsonb,
    p_id text, p_hold_expires_at timestamptz, p_status text,
    p_start timestamptz, p_end timestamptz,
    p_buffer_before bigint, p_buffer_after bigint, p_resources text[],
    p_patient text, p_type text,
    p_reason bytea, p_notes bytea, p_phi_key text,
    -- The busy span; NULL when the appointment holds no time.
    p_busy_lo timestamptz, p_busy_hi timestamptz,
    -- Capacity-one claims, sorted and distinct; empty when overbooked.
    p_claims text[],
    p_event_kinds text[], p_event_due timestamptz[], p_event_appointments text[],
    p_event_data jsonb[],
    p_audit_at timestamptz[], p_audit_actor text[], p_audit_action text[],
    p_audit_record text[], p_audit_decision text[], p_audit_reason_code text[],
    p_audit_policy_version text[], p_audit_break_glass boolean[]
) RETURNS bigint
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    k bigint;
    r text;
    head_seq bigint;
    head_hash text;
    h text;
    i int;
BEGIN
    PERFORM set_config('medsched.tenant', p_tenant, true);
    IF p_idem_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(2, hashtext(p_tenant || chr(31) || p_idem_key));
        IF EXISTS (SELECT 1 FROM medsched.idempotency
                   WHERE tenant_id = p_tenant AND key = p_idem_key) THEN
            RAISE EXCEPTION USING ERRCODE = 'MS003', MESSAGE = 'idempotency key recorded';
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(1, hashtext(p_tenant || chr(31) || c))
    FROM unnest(p_claims) WITH ORDINALITY AS u(c, n) ORDER BY n;
    IF cardinality(p_audit_at) > 0 THEN
        PERFORM pg_advisory_xact_lock(3, hashtext(p_tenant || chr(31) || ''));
    END IF;

    INSERT INTO medsched.appointments
        (tenant_id, id, version, hold_expires_at, status, start_at, end_at,
         buffer_before_min, buffer_after_min, resources, patient_id, type_id,
         reason, notes, phi_key)
    VALUES (p_tenant, p_id, 1, p_hold_expires_at, p_status, p_start, p_end,
            p_buffer_before, p_buffer_after, p_resources, p_patient, p_type,
            p_reason, p_notes, p_phi_key)
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING key INTO k;
    IF k IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'MS002', MESSAGE = 'appointment exists';
    END IF;

    IF p_busy_lo IS NOT NULL THEN
        FOREACH r IN ARRAY p_claims LOOP
            -- Any row in the way? (In key order, so that the plan is the
            -- key's range scan whatever the statistics say: plans here are
            -- generic.) Usually none, and that is all.
            PERFORM 1 FROM medsched.active_bookings
            WHERE tenant_id = p_tenant AND resource_id = r
              AND busy_hi > p_busy_lo AND busy_lo < p_busy_hi
            ORDER BY busy_hi LIMIT 1;
            IF FOUND THEN
                -- Lapsed holds never block: remove them, then look again.
                DELETE FROM medsched.active_bookings
                WHERE tenant_id = p_tenant AND resource_id = r
                  AND hold_expires_at <= p_now
                  AND busy_hi > p_busy_lo AND busy_lo < p_busy_hi;
                PERFORM 1 FROM medsched.active_bookings
                WHERE tenant_id = p_tenant AND resource_id = r
                  AND busy_hi > p_busy_lo AND busy_lo < p_busy_hi
                ORDER BY busy_hi LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'MS001', MESSAGE = r;
                END IF;
            END IF;
        END LOOP;
        -- The exclusion constraint stays the guarantee for the rows of
        -- capacity-one claims (a writer outside medsched may race).
        INSERT INTO medsched.active_bookings
            (tenant_id, resource_id, appointment_key, busy, hold_expires_at, capacity_one)
        SELECT p_tenant, res, k, tstzrange(p_busy_lo, p_busy_hi, '[)'), p_hold_expires_at,
               res = ANY (p_claims)
        FROM (SELECT DISTINCT unnest(p_resources) AS res) d;
    END IF;

    IF cardinality(p_event_kinds) > 0 THEN
        INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
        SELECT p_tenant, e.kind, e.due, e.appointment, e.data
        FROM unnest(p_event_kinds, p_event_due, p_event_appointments, p_event_data)
            AS e(kind, due, appointment, data);
    END IF;

    IF cardinality(p_audit_at) > 0 THEN
        SELECT seq, hash INTO head_seq, head_hash FROM medsched.audit
        WHERE tenant_id = p_tenant ORDER BY seq DESC LIMIT 1;
        head_seq := coalesce(head_seq, 0);
        head_hash := coalesce(head_hash, repeat('0', 64));
        FOR i IN 1 .. cardinality(p_audit_at) LOOP
            head_seq := head_seq + 1;
            h := medsched.audit_hash(head_hash, head_seq, p_audit_at[i], p_audit_actor[i],
                                     p_audit_action[i], p_audit_record[i], p_audit_decision[i],
                                     p_audit_reason_code[i], p_audit_policy_version[i],
                                     p_audit_break_glass[i]);
            INSERT INTO medsched.audit (tenant_id, seq, at, actor, action, record, decision,
                reason_code, policy_version, break_glass, prev_hash, hash)
            VALUES (p_tenant, head_seq, p_audit_at[i], p_audit_actor[i], p_audit_action[i],
                    p_audit_record[i], p_audit_decision[i], p_audit_reason_code[i],
                    p_audit_policy_version[i], p_audit_break_glass[i], head_hash, h);
            head_hash := h;
        END LOOP;
    END IF;

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO medsched.idempotency (tenant_id, key, fingerprint, result)
        VALUES (p_tenant, p_idem_key, p_idem_fingerprint,
                jsonb_set(p_idem_result, '{0,key}', to_jsonb(k)));
    END IF;
    RETURN k;
END
$$;
