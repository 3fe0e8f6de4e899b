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

-- Batches that each insert one appointment (with capacity-one claims, or
-- overbooked, or unclaimed), emit events and append audit records, in one
-- statement: with autocommit, one round trip for one booking or for the
-- bookings of several callers that the adapter commits together. Each item
-- does what the adapter's statement-by-statement path does for such a
-- batch (src/store.rs), and succeeds or fails on its own:
--   * the caller passes every lock of every item in one global order
--     (idempotency keys, then claimed resources, then audit chains, each
--     sorted by tenant and name), taken here before anything else, so
--     that two such calls, or one and a statement-by-statement batch,
--     never wait for each other in a cycle;
--   * an item is checked (idempotency key, id, claimed time) before it writes
--     anything, so a refused item leaves no row behind (only lapsed holds
--     in its way are gone, which no reader can tell);
--   * items run in order: a later item sees the rows of an earlier one,
--     so two items claiming one slot get one booking.
-- Per item the result is its appointment key, or NULL with a code:
--   MS001 slot taken (detail: the resource id)
--   MS002 the appointment id exists
--   MS003 the idempotency key has a recorded result (the caller replays it)
-- Other errors (a writer outside medsched racing for a capacity-one row:
-- 23P01) abort the whole call; the adapter then commits the items one by
-- one. PHI arrives encrypted (or as version-0 plaintext) from the caller.
-- Lists of items' resources, claims, events and audit records are flat,
-- with a count per item.
CREATE FUNCTION medsched.commit_inserts(
    p_lock_class int[], p_lock_name text[],
    p_tenant text[], p_now timestamptz[],
    p_idem_key text[], p_idem_fingerprint text[], p_idem_result jsonb[],
    p_id text[], p_hold_expires_at timestamptz[], p_status text[],
    p_start timestamptz[], p_end timestamptz[],
    p_buffer_before bigint[], p_buffer_after bigint[],
    p_patient text[], p_type text[],
    p_reason bytea[], p_notes bytea[], p_phi_key text[],
    -- The busy span; NULL when the appointment holds no time.
    p_busy_lo timestamptz[], p_busy_hi timestamptz[],
    p_resource_count int[], p_resources text[],
    -- Capacity-one claims, distinct; none when overbooked.
    p_claim_count int[], p_claims text[],
    p_event_count int[], p_event_kinds text[], p_event_due timestamptz[],
    p_event_appointments text[], p_event_data jsonb[],
    p_audit_count int[], p_audit_at timestamptz[], p_audit_actor text[],
    p_audit_action text[], p_audit_record text[], p_audit_decision text[],
    p_audit_reason_code text[], p_audit_policy_version text[],
    p_audit_break_glass boolean[],
    OUT keys bigint[], OUT codes text[], OUT details text[]
)
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    n int := cardinality(p_id);
    i int;
    j int;
    k bigint;
    r text;
    t text;
    res text[];
    claims text[];
    ro int := 0;
    co int := 0;
    eo int := 0;
    ao int := 0;
    rn int;
    cn int;
    en int;
    an int;
    head_seq bigint;
    head_hash text;
    h text;
BEGIN
    keys := array_fill(NULL::bigint, ARRAY[n]);
    codes := array_fill(NULL::text, ARRAY[n]);
    details := array_fill(NULL::text, ARRAY[n]);
    FOR j IN 1 .. cardinality(p_lock_class) LOOP
        PERFORM pg_advisory_xact_lock(p_lock_class[j], hashtext(p_lock_name[j]));
    END LOOP;

    <<items>>
    FOR i IN 1 .. n LOOP
        t := p_tenant[i];
        rn := p_resource_count[i];
        cn := p_claim_count[i];
        en := p_event_count[i];
        an := p_audit_count[i];
        res := p_resources[ro + 1 : ro + rn];
        claims := p_claims[co + 1 : co + cn];
        ro := ro + rn;
        co := co + cn;
        eo := eo + en;
        ao := ao + an;
        PERFORM set_config('medsched.tenant', t, true);

        IF p_idem_key[i] IS NOT NULL THEN
            PERFORM 1 FROM medsched.idempotency
            WHERE tenant_id = t AND key = p_idem_key[i];
            IF FOUND THEN
                codes[i] := 'MS003';
                CONTINUE items;
            END IF;
        END IF;

        -- An existing id first, as the statement-by-statement path finds it
        -- (a concurrent insert of the same id is caught by ON CONFLICT).
        PERFORM 1 FROM medsched.appointments WHERE tenant_id = t AND id = p_id[i];
        IF FOUND THEN
            codes[i] := 'MS002';
            CONTINUE items;
        END IF;

        IF p_busy_lo[i] IS NOT NULL THEN
            FOREACH r IN ARRAY claims LOOP
                -- Any row in the way? (In key order, so that the plan is
                -- the key's range scan whatever the statistics say: plans
                -- here are generic.) Usually none, and that is all.
                PERFORM 1 FROM medsched.active_bookings
                WHERE tenant_id = t AND resource_id = r
                  AND busy_hi > p_busy_lo[i] AND busy_lo < p_busy_hi[i]
                ORDER BY busy_hi LIMIT 1;
                IF FOUND THEN
                    -- Lapsed holds never block: remove them, look again.
                    DELETE FROM medsched.active_bookings
                    WHERE tenant_id = t AND resource_id = r
                      AND hold_expires_at <= p_now[i]
                      AND busy_hi > p_busy_lo[i] AND busy_lo < p_busy_hi[i];
                    PERFORM 1 FROM medsched.active_bookings
                    WHERE tenant_id = t AND resource_id = r
                      AND busy_hi > p_busy_lo[i] AND busy_lo < p_busy_hi[i]
                    ORDER BY busy_hi LIMIT 1;
                    IF FOUND THEN
                        codes[i] := 'MS001';
                        details[i] := r;
                        CONTINUE items;
                    END IF;
                END IF;
            END LOOP;
        END IF;

        INSERT INTO medsched.appointments
            (tenant_id, id, version, hold_expires_at, status, start_at, end_at,
             buffer_before_min, buffer_after_min, resources, patient_id, type_id,
             reason, notes, phi_key)
        VALUES (t, p_id[i], 1, p_hold_expires_at[i], p_status[i], p_start[i], p_end[i],
                p_buffer_before[i], p_buffer_after[i], res, p_patient[i], p_type[i],
                p_reason[i], p_notes[i], p_phi_key[i])
        ON CONFLICT (tenant_id, id) DO NOTHING
        RETURNING key INTO k;
        IF k IS NULL THEN
            codes[i] := 'MS002';
            CONTINUE items;
        END IF;

        -- The exclusion constraint stays the guarantee for the rows of
        -- capacity-one claims (a writer outside medsched may race).
        IF p_busy_lo[i] IS NULL THEN
            NULL;
        ELSIF rn = 1 THEN
            INSERT INTO medsched.active_bookings
                (tenant_id, resource_id, appointment_key, busy, hold_expires_at,
                 capacity_one)
            VALUES (t, res[1], k, tstzrange(p_busy_lo[i], p_busy_hi[i], '[)'),
                    p_hold_expires_at[i], res[1] = ANY (claims));
        ELSE
            INSERT INTO medsched.active_bookings
                (tenant_id, resource_id, appointment_key, busy, hold_expires_at,
                 capacity_one)
            SELECT t, d.res, k, tstzrange(p_busy_lo[i], p_busy_hi[i], '[)'),
                   p_hold_expires_at[i], d.res = ANY (claims)
            FROM (SELECT DISTINCT unnest(res) AS res) d;
        END IF;

        IF en = 1 THEN
            INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
            VALUES (t, p_event_kinds[eo], p_event_due[eo], p_event_appointments[eo],
                    p_event_data[eo]);
        ELSIF en > 1 THEN
            INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
            SELECT t, e.kind, e.due, e.appointment, e.data
            FROM unnest(p_event_kinds[eo - en + 1 : eo], p_event_due[eo - en + 1 : eo],
                        p_event_appointments[eo - en + 1 : eo],
                        p_event_data[eo - en + 1 : eo])
                AS e(kind, due, appointment, data);
        END IF;

        IF an > 0 THEN
            SELECT seq, hash INTO head_seq, head_hash FROM medsched.audit
            WHERE tenant_id = t ORDER BY seq DESC LIMIT 1;
            head_seq := coalesce(head_seq, 0);
            head_hash := coalesce(head_hash, repeat('0', 64));
            FOR j IN ao - an + 1 .. ao LOOP
                head_seq := head_seq + 1;
                h := medsched.audit_hash(head_hash, head_seq, p_audit_at[j], p_audit_actor[j],
                                         p_audit_action[j], p_audit_record[j],
                                         p_audit_decision[j], p_audit_reason_code[j],
                                         p_audit_policy_version[j], p_audit_break_glass[j]);
                INSERT INTO medsched.audit (tenant_id, seq, at, actor, action, record,
                    decision, reason_code, policy_version, break_glass, prev_hash, hash)
                VALUES (t, head_seq, p_audit_at[j], p_audit_actor[j], p_audit_action[j],
                        p_audit_record[j], p_audit_decision[j], p_audit_reason_code[j],
                        p_audit_policy_version[j], p_audit_break_glass[j], head_hash, h);
                head_hash := h;
            END LOOP;
        END IF;

        IF p_idem_key[i] IS NOT NULL THEN
            INSERT INTO medsched.idempotency (tenant_id, key, fingerprint, result)
            VALUES (t, p_idem_key[i], p_idem_fingerprint[i],
                    jsonb_set(p_idem_result[i], '{0,key}', to_jsonb(k)));
        END IF;
        keys[i] := k;
    END LOOP;
END
$$;
