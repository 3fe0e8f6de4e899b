-- Schema version 6: the booking functions never plan a sequential scan
-- where an index serves.
--
-- They force generic plans (ADR 0008), made once per connection on the
-- statistics and table sizes of that moment and kept for as long as the
-- connection lives or until the table's statistics change. A connection
-- that first booked while the tables were nearly empty (a new database, a
-- new deployment) got a plan reading the whole table for the look-up of
-- rows outside the exclusion constraint, the probes and the audit chain's
-- head, and kept reading every row on every booking as the tables grew.
-- With sequential scans disabled for these functions, the planner takes
-- the index that each look-up is written for whatever the statistics say
-- (it still scans a table that has no usable index).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'medsched'
          AND p.proname IN ('commit_insert', 'commit_inserts', 'append_audits')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET enable_seqscan = off', f);
    END LOOP;
END
$$;
