-- Schema version 5: a claim's check is one probe of the key, however many
-- rows the resource's calendar holds.
--
-- Version 4 looked for any row ending after a claim's start and starting
-- before its end, in the order of the key (tenant, resource, busy end):
-- when nothing overlapped, that read every later row of the resource, so a
-- booking into a filled calendar cost time in proportion to the bookings
-- after it. Capacity-one rows are pairwise disjoint (the exclusion
-- constraint), so of them only the first one ending after a claim's start
-- can overlap it. Rows outside the constraint (overbooked rows, rows of
-- claims above one) can lie anywhere; they are few, and have an index of
-- their own, which capacity-one rows (nearly all rows) do not enter.
--
-- The probes ask for `capacity_one IS NOT FALSE` (the column is NOT NULL),
-- not `capacity_one`: that would also match the predicate of the partial
-- GiST index of the exclusion constraint, and a generic plan may then read
-- all of the resource's rows from it and sort them.
CREATE INDEX active_bookings_shared
    ON medsched.active_bookings (tenant_id, resource_id, busy_hi) INCLUDE (busy_lo)
    WHERE NOT capacity_one;

-- The busy span's bounds are plain columns from now on, written with the
-- span by the adapter's statements (an empty span: start infinity, end
-- -infinity). As generated columns they cost a planned expression per
-- column on every insert statement, about a thirtieth of a booking. The
-- exclusion constraint stays on `busy` itself, the guarantee; a writer
-- outside medsched must write the bounds with the span (they are NOT
-- NULL), or medsched's look-ups do not see its row.
ALTER TABLE medsched.active_bookings
    ALTER COLUMN busy_lo DROP EXPRESSION,
    ALTER COLUMN busy_hi DROP EXPRESSION;

-- Fails the statement as the exclusion constraint would (23P01): for a row
-- outside the constraint found in a booking's way without a probe.
CREATE FUNCTION medsched.refuse_overlap() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION 'a row outside the exclusion constraint holds the time'
        USING ERRCODE = 'exclusion_violation';
END
$$;

-- commit_insert takes p_probe. Probing a claim costs a statement (about a
-- tenth of a booking's server time). Without it the function leaves
-- capacity-one rows to the exclusion constraint, which checks them anyway:
-- a booking in their way fails with 23P01 having written nothing, and the
-- adapter calls again with p_probe, which removes lapsed holds and answers
-- with the claim in the way (or the existing id). Rows outside the
-- constraint are looked for in the statement that inserts the booking's
-- rows. The adapter probes first where the constraint cannot stand in (a
-- claim on a resource the appointment does not occupy) and while bookings
-- often meet conflicts (then a refused call and a probing one cost more
-- than a probe).
DROP FUNCTION medsched.commit_insert(
    text, timestamptz, text, text, jsonb, text, timestamptz, text, timestamptz, timestamptz,
    bigint, bigint, text[], text, text, bytea, bytea, text, timestamptz, timestamptz, text[],
    text[], timestamptz[], text[], jsonb[], timestamptz[], text[], text[], text[], text[],
    text[], text[], boolean[]);

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
    -- The events and the audit records (NULL lists: none).
    p_event_kinds text[], p_event_due timestamptz[], p_event_appointments text[],
    p_event_data jsonb[],
    p_audit_at timestamptz[], p_audit_actor text[], p_audit_action text[],
    p_audit_record text[], p_audit_decision text[], p_audit_reason_code text[],
    p_audit_policy_version text[], p_audit_break_glass boolean[],
    -- Whether to look for rows in the way before writing (see above).
    p_probe boolean
) RETURNS bigint
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict error
DECLARE
    key bigint;
    r text;
    n int := 0;
    -- The busy span's bounds as active_bookings holds them.
    span_lo timestamptz := CASE WHEN p_busy_lo < p_busy_hi THEN p_busy_lo
                                ELSE 'infinity' END;
    span_hi timestamptz := CASE WHEN p_busy_lo < p_busy_hi THEN p_busy_hi
                                ELSE '-infinity' END;
    blocked boolean;
BEGIN
    PERFORM set_config('medsched.tenant', p_tenant, true);
    IF p_idem_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(2, hashtext(p_tenant || chr(31) || p_idem_key));
    END IF;
    FOREACH r IN ARRAY p_claims LOOP
        PERFORM pg_advisory_xact_lock(1, hashtext(p_tenant || chr(31) || r));
    END LOOP;
    IF cardinality(p_audit_at) > 0 THEN
        PERFORM pg_advisory_xact_lock(3, hashtext(p_tenant || chr(31) || ''));
    END IF;

    IF p_idem_key IS NOT NULL THEN
        PERFORM 1 FROM medsched.idempotency
        WHERE tenant_id = p_tenant AND idempotency.key = p_idem_key;
        IF FOUND THEN
            RETURN -3;
        END IF;
    END IF;

    IF p_probe AND p_busy_lo IS NOT NULL THEN
        FOREACH r IN ARRAY p_claims LOOP
            n := n + 1;
            -- Any row in the way? Usually none, and that is all. Lapsed
            -- holds never block: if a row is in the way, they are removed
            -- and the claim is looked at once more.
            FOR attempt IN 1 .. 2 LOOP
                -- Capacity-one rows are disjoint (the exclusion
                -- constraint): of them only the first one ending after the
                -- start can overlap, one probe of the key whatever the
                -- resource's calendar holds. Rows outside the constraint
                -- (overbooked, or of larger claims) have their own index.
                SELECT EXISTS (
                           SELECT FROM (SELECT b.busy_lo FROM medsched.active_bookings b
                                        WHERE b.tenant_id = p_tenant AND b.resource_id = r
                                          AND b.capacity_one IS NOT FALSE AND b.busy_hi > p_busy_lo
                                        ORDER BY b.busy_hi LIMIT 1) first
                           WHERE first.busy_lo < p_busy_hi)
                    OR EXISTS (
                           SELECT FROM medsched.active_bookings b
                           WHERE b.tenant_id = p_tenant AND b.resource_id = r
                             AND NOT b.capacity_one
                             AND b.busy_hi > p_busy_lo AND b.busy_lo < p_busy_hi)
                INTO blocked;
                EXIT WHEN NOT blocked OR attempt = 2;
                DELETE FROM medsched.active_bookings
                WHERE tenant_id = p_tenant AND resource_id = r
                  AND hold_expires_at <= p_now
                  AND busy_hi > p_busy_lo AND busy_lo < p_busy_hi;
            END LOOP;
            IF blocked THEN
                -- An existing id is reported first, as the
                -- statement-by-statement path finds it.
                PERFORM 1 FROM medsched.appointments
                WHERE tenant_id = p_tenant AND id = p_id;
                IF FOUND THEN
                    RETURN -2;
                END IF;
                RETURN -1000 - n;
            END IF;
        END LOOP;
    END IF;

    INSERT INTO medsched.appointments
        (tenant_id, id, version, hold_expires_at, status, start_at, end_at,
         buffer_before_min, buffer_after_min, resources, patient_id, type_id,
         reason, notes, phi_key)
    VALUES (p_tenant, p_id, 1, p_hold_expires_at, p_status, p_start, p_end,
            p_buffer_before, p_buffer_after, p_resources, p_patient, p_type,
            p_reason, p_notes, p_phi_key)
    RETURNING appointments.key INTO key;
    -- An existing id fails here with 23505 (appointments_tenant_id_id_key),
    -- having written nothing, which the adapter answers as a duplicate id:
    -- cheaper than ON CONFLICT's speculative insertion on every booking.

    -- The exclusion constraint stays the guarantee for the rows of
    -- capacity-one claims (a writer outside medsched may race). Not
    -- probed, it also refuses a capacity-one row in the way (23P01, and the
    -- adapter calls again with p_probe); a row outside it is looked for
    -- here and refused the same way (medsched.refuse_overlap).
    IF p_busy_lo IS NULL THEN
        NULL;
    ELSIF cardinality(p_resources) = 1 THEN
        INSERT INTO medsched.active_bookings
            (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi, hold_expires_at,
             capacity_one)
        VALUES (p_tenant, p_resources[1], key, tstzrange(p_busy_lo, p_busy_hi, '[)'),
                span_lo, span_hi, p_hold_expires_at,
                CASE WHEN NOT p_resources[1] = ANY (p_claims) THEN false
                     WHEN NOT p_probe AND EXISTS (
                              SELECT FROM medsched.active_bookings b
                              WHERE b.tenant_id = p_tenant AND b.resource_id = p_resources[1]
                                AND NOT b.capacity_one
                                AND b.busy_hi > p_busy_lo AND b.busy_lo < p_busy_hi)
                          THEN medsched.refuse_overlap()
                     ELSE true END);
    ELSE
        INSERT INTO medsched.active_bookings
            (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi, hold_expires_at,
             capacity_one)
        SELECT p_tenant, d.res, key, tstzrange(p_busy_lo, p_busy_hi, '[)'), span_lo, span_hi,
               p_hold_expires_at,
               CASE WHEN NOT d.res = ANY (p_claims) THEN false
                    WHEN NOT p_probe AND EXISTS (
                             SELECT FROM medsched.active_bookings b
                             WHERE b.tenant_id = p_tenant AND b.resource_id = d.res
                               AND NOT b.capacity_one
                               AND b.busy_hi > p_busy_lo AND b.busy_lo < p_busy_hi)
                         THEN medsched.refuse_overlap()
                    ELSE true END
        FROM (SELECT DISTINCT unnest(p_resources) AS res) d;
    END IF;

    IF cardinality(p_event_kinds) = 1 THEN
        INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
        VALUES (p_tenant, p_event_kinds[1], p_event_due[1], p_event_appointments[1],
                p_event_data[1]);
    ELSIF cardinality(p_event_kinds) > 1 THEN
        INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
        SELECT p_tenant, e.kind, e.due, e.appointment, e.data
        FROM unnest(p_event_kinds, p_event_due, p_event_appointments, p_event_data)
            AS e(kind, due, appointment, data);
    END IF;

    IF p_audit_at IS NOT NULL THEN
        PERFORM medsched.append_audits(p_tenant, p_audit_at, p_audit_actor, p_audit_action,
                                       p_audit_record, p_audit_decision, p_audit_reason_code,
                                       p_audit_policy_version, p_audit_break_glass);
    END IF;

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO medsched.idempotency (tenant_id, key, fingerprint, result)
        VALUES (p_tenant, p_idem_key, p_idem_fingerprint,
                jsonb_set(p_idem_result, '{0,key}', to_jsonb(key)));
    END IF;
    RETURN key;
END
$$;

-- commit_inserts takes p_probe too, with the same meaning.
DROP FUNCTION medsched.commit_inserts;

CREATE FUNCTION medsched.commit_inserts(
    p_lock_class int[], p_lock_name text[],
    -- The items' tenants, distinct and sorted.
    p_tenants text[],
    p_tenant text[], p_now timestamptz[],
    -- NULL lists when no item has an idempotency key.
    p_idem_key text[], p_idem_fingerprint text[], p_idem_result jsonb[],
    p_id text[], p_hold_expires_at timestamptz[], p_status text[],
    p_start timestamptz[], p_end timestamptz[],
    p_buffer_before bigint[], p_buffer_after bigint[],
    p_patient text[], p_type text[],
    p_reason bytea[], p_notes bytea[], p_phi_key text[],
    p_busy_lo timestamptz[], p_busy_hi timestamptz[],
    p_resource_item int[], p_resources text[],
    p_claim_item int[], p_claims text[],
    -- NULL lists when there are no events, no audit records.
    p_event_item int[], p_event_kinds text[], p_event_due timestamptz[],
    p_event_appointments text[], p_event_data jsonb[],
    p_audit_item int[], p_audit_at timestamptz[], p_audit_actor text[],
    p_audit_action text[], p_audit_record text[], p_audit_decision text[],
    p_audit_reason_code text[], p_audit_policy_version text[],
    p_audit_break_glass boolean[],
    -- Whether to look for rows in the way before writing (see above).
    p_probe boolean,
    OUT keys bigint[], OUT codes text[], OUT details text[]
)
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    n int := cardinality(p_id);
    i int;
    j int;
    tn text;
    res record;
    failed int[] := '{}';
    au_at timestamptz[];
    au_actor text[];
    au_action text[];
    au_record text[];
    au_decision text[];
    au_reason_code text[];
    au_policy_version text[];
    au_break_glass boolean[];
BEGIN
    keys := array_fill(NULL::bigint, ARRAY[n]);
    codes := array_fill(NULL::text, ARRAY[n]);
    details := array_fill(NULL::text, ARRAY[n]);
    FOR j IN 1 .. cardinality(p_lock_class) LOOP
        PERFORM pg_advisory_xact_lock(p_lock_class[j], hashtext(p_lock_name[j]));
    END LOOP;

    FOREACH tn IN ARRAY p_tenants LOOP
        PERFORM set_config('medsched.tenant', tn, true);

        -- Checks, in the order of the single path: the idempotency key
        -- (1), the id (2), the claimed time (3, by resource name); the
        -- first failure of an item counts. A claim whose first overlapping
        -- row is a lapsed hold is not decided here: the item comes back
        -- as AGAIN, having written nothing, and the adapter commits it
        -- alone (medsched.commit_insert removes lapsed holds). Each
        -- look-up is a LIMIT 1 probe per item, in key order where it scans
        -- a range, so that the generic plan probes the index rather than
        -- joining whole tables whatever the statistics say. Not probing,
        -- only idempotency keys are looked up: an existing id is skipped
        -- by the insert below, and capacity-one rows in the way are
        -- refused by the exclusion constraint.
        IF p_probe OR p_idem_key IS NOT NULL THEN
            FOR res IN
                SELECT x.i, 1 AS rank, 'MS003' AS code, NULL::text AS detail
                FROM unnest(p_tenant, p_idem_key) WITH ORDINALITY x(tt, k, i)
                CROSS JOIN LATERAL (
                    SELECT 1 FROM medsched.idempotency d
                    WHERE d.tenant_id = tn AND d.key = x.k LIMIT 1) recorded
                WHERE x.tt = tn AND x.k IS NOT NULL
                UNION ALL
                SELECT x.i, 2, 'MS002', NULL
                FROM unnest(p_tenant, p_id) WITH ORDINALITY x(tt, id, i)
                CROSS JOIN LATERAL (
                    SELECT 1 FROM medsched.appointments a
                    WHERE a.tenant_id = tn AND a.id = x.id LIMIT 1) existing
                WHERE x.tt = tn AND p_probe
                UNION ALL
                SELECT c.i, 3, CASE WHEN blocking.live THEN 'MS001' ELSE 'AGAIN' END, c.r
                FROM unnest(p_claim_item, p_claims) c(i, r)
                JOIN unnest(p_tenant, p_busy_lo, p_busy_hi, p_now)
                    WITH ORDINALITY it(tt, lo, hi, now, i) ON it.i = c.i
                CROSS JOIN LATERAL (
                    -- The first row in the way: of the disjoint capacity-one
                    -- rows only the first one ending after the start can be.
                    SELECT p.hold_expires_at IS NULL OR p.hold_expires_at > it.now AS live
                    FROM ((SELECT b.busy_lo, b.busy_hi, b.hold_expires_at
                           FROM medsched.active_bookings b
                           WHERE b.tenant_id = tn AND b.resource_id = c.r
                             AND b.capacity_one IS NOT FALSE AND b.busy_hi > it.lo
                           ORDER BY b.busy_hi LIMIT 1)
                          UNION ALL
                          (SELECT b.busy_lo, b.busy_hi, b.hold_expires_at
                           FROM medsched.active_bookings b
                           WHERE b.tenant_id = tn AND b.resource_id = c.r
                             AND NOT b.capacity_one
                             AND b.busy_hi > it.lo AND b.busy_lo < it.hi
                           ORDER BY b.busy_hi LIMIT 1)) p
                    WHERE p.busy_lo < it.hi
                    ORDER BY p.busy_hi LIMIT 1) blocking
                WHERE it.tt = tn AND it.lo IS NOT NULL AND p_probe
                ORDER BY 1, 2, 4
            LOOP
                IF codes[res.i] IS NULL THEN
                    codes[res.i] := res.code;
                    details[res.i] := res.detail;
                    failed := failed || res.i;
                END IF;
            END LOOP;
        END IF;

        -- The appointments (an id inserted meanwhile by another
        -- transaction is skipped, and its item refused), then their rows.
        FOR res IN
            INSERT INTO medsched.appointments
                (tenant_id, id, version, hold_expires_at, status, start_at, end_at,
                 buffer_before_min, buffer_after_min, resources, patient_id, type_id,
                 reason, notes, phi_key)
            SELECT tn, x.id, 1, x.hold, x.status, x.s, x.e, x.bb, x.ba,
                   coalesce((SELECT array_agg(y.r ORDER BY y.o)
                             FROM unnest(p_resource_item, p_resources) WITH ORDINALITY y(it, r, o)
                             WHERE y.it = x.i), '{}'),
                   x.patient, x.type, x.reason, x.notes, x.phi_key
            FROM unnest(p_tenant, p_id, p_hold_expires_at, p_status, p_start, p_end,
                        p_buffer_before, p_buffer_after, p_patient, p_type, p_reason,
                        p_notes, p_phi_key)
                WITH ORDINALITY x(tt, id, hold, status, s, e, bb, ba, patient, type, reason,
                                  notes, phi_key, i)
            WHERE x.tt = tn AND x.i <> ALL (failed)
            ORDER BY x.i
            ON CONFLICT (tenant_id, id) DO NOTHING
            RETURNING appointments.key, appointments.id
        LOOP
            -- Ids are distinct within a tenant's independent items.
            i := array_position(p_id, res.id);
            WHILE p_tenant[i] <> tn LOOP
                i := array_position(p_id, res.id, i + 1);
            END LOOP;
            keys[i] := res.key;
        END LOOP;
        FOR i IN 1 .. n LOOP
            IF p_tenant[i] = tn AND keys[i] IS NULL AND codes[i] IS NULL THEN
                codes[i] := 'MS002';
            END IF;
        END LOOP;

        INSERT INTO medsched.active_bookings
            (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi,
             hold_expires_at, capacity_one)
        SELECT DISTINCT ON (r.i, r.res) tn, r.res, keys[r.i],
               tstzrange(p_busy_lo[r.i], p_busy_hi[r.i], '[)'),
               CASE WHEN p_busy_lo[r.i] < p_busy_hi[r.i] THEN p_busy_lo[r.i]
                    ELSE 'infinity' END,
               CASE WHEN p_busy_lo[r.i] < p_busy_hi[r.i] THEN p_busy_hi[r.i]
                    ELSE '-infinity' END,
               p_hold_expires_at[r.i],
               CASE WHEN NOT EXISTS (SELECT 1 FROM unnest(p_claim_item, p_claims) c(i, cr)
                                     WHERE c.i = r.i AND c.cr = r.res) THEN false
                    -- Not probed: a row outside the constraint in the way
                    -- fails the call as the constraint would.
                    WHEN NOT p_probe AND EXISTS (
                             SELECT FROM medsched.active_bookings b
                             WHERE b.tenant_id = tn AND b.resource_id = r.res
                               AND NOT b.capacity_one
                               AND b.busy_hi > p_busy_lo[r.i]
                               AND b.busy_lo < p_busy_hi[r.i])
                         THEN medsched.refuse_overlap()
                    ELSE true END
        FROM unnest(p_resource_item, p_resources) r(i, res)
        WHERE p_tenant[r.i] = tn AND keys[r.i] IS NOT NULL AND p_busy_lo[r.i] IS NOT NULL
        ORDER BY r.i, r.res;

        IF p_event_item IS NOT NULL THEN
            INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
            SELECT tn, e.kind, e.due, e.appointment, e.data
            FROM unnest(p_event_item, p_event_kinds, p_event_due, p_event_appointments,
                        p_event_data) WITH ORDINALITY e(i, kind, due, appointment, data, o)
            WHERE p_tenant[e.i] = tn AND keys[e.i] IS NOT NULL
            ORDER BY e.o;
        END IF;

        IF p_audit_item IS NOT NULL THEN
            -- The records of the items that went ahead, in order.
            SELECT array_agg(a.at ORDER BY a.o), array_agg(a.actor ORDER BY a.o),
                   array_agg(a.action ORDER BY a.o), array_agg(a.record ORDER BY a.o),
                   array_agg(a.decision ORDER BY a.o), array_agg(a.reason_code ORDER BY a.o),
                   array_agg(a.policy_version ORDER BY a.o),
                   array_agg(a.break_glass ORDER BY a.o)
            INTO au_at, au_actor, au_action, au_record, au_decision, au_reason_code,
                 au_policy_version, au_break_glass
            FROM unnest(p_audit_item, p_audit_at, p_audit_actor, p_audit_action,
                        p_audit_record, p_audit_decision, p_audit_reason_code,
                        p_audit_policy_version, p_audit_break_glass)
                WITH ORDINALITY a(i, at, actor, action, record, decision, reason_code,
                                  policy_version, break_glass, o)
            WHERE p_tenant[a.i] = tn AND keys[a.i] IS NOT NULL;
            IF au_at IS NOT NULL THEN
                PERFORM medsched.append_audits(tn, au_at, au_actor, au_action, au_record,
                                               au_decision, au_reason_code, au_policy_version,
                                               au_break_glass);
            END IF;
        END IF;

        IF p_idem_key IS NOT NULL THEN
            INSERT INTO medsched.idempotency (tenant_id, key, fingerprint, result)
            SELECT tn, x.k, x.fp, jsonb_set(x.result, '{0,key}', to_jsonb(keys[x.i]))
            FROM unnest(p_tenant, p_idem_key, p_idem_fingerprint, p_idem_result)
                WITH ORDINALITY x(tt, k, fp, result, i)
            WHERE x.tt = tn AND x.k IS NOT NULL AND keys[x.i] IS NOT NULL;
        END IF;
    END LOOP;
END
$$;
