-- medsched schema, version 1. Every table's primary key leads with tenant_id,
-- so the tables can be distributed by tenant without a schema change.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- A tenant's catalog (everything but appointments), optimistic version.
CREATE TABLE medsched.catalogs (
    tenant_id text NOT NULL,
    version   bigint NOT NULL CHECK (version > 0),
    data      jsonb NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- Appointments. `doc` is the record without its PHI fields; the PHI fields
-- are separate columns so that they can be encrypted at rest.
CREATE TABLE medsched.appointments (
    tenant_id         text NOT NULL,
    key               bigint GENERATED ALWAYS AS IDENTITY,
    id                text NOT NULL,
    version           bigint NOT NULL CHECK (version > 0),
    hold_expires_at   timestamptz,
    status            text NOT NULL,
    start_at          timestamptz,
    end_at            timestamptz,
    buffer_before_min bigint NOT NULL,
    buffer_after_min  bigint NOT NULL,
    resources         text[] NOT NULL,
    patient_id        text,
    type_id           text,
    doc               jsonb NOT NULL,
    reason            text,
    notes             text,
    PRIMARY KEY (tenant_id, key),
    UNIQUE (tenant_id, id)
);
CREATE INDEX appointments_patient ON medsched.appointments (tenant_id, patient_id, start_at)
    WHERE patient_id IS NOT NULL;

-- One row per appointment x resource that currently holds time. Rows
-- claimed with capacity one are covered by the exclusion constraint; rows
-- of larger resources (and overbooked rows) are not, and are checked under
-- a per-resource lock instead.
CREATE TABLE medsched.active_bookings (
    tenant_id       text NOT NULL,
    resource_id     text NOT NULL,
    appointment_key bigint NOT NULL,
    busy            tstzrange NOT NULL,
    hold_expires_at timestamptz,
    capacity_one    boolean NOT NULL,
    PRIMARY KEY (tenant_id, appointment_key, resource_id),
    FOREIGN KEY (tenant_id, appointment_key)
        REFERENCES medsched.appointments (tenant_id, key) ON DELETE CASCADE,
    CONSTRAINT active_bookings_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, resource_id WITH =, busy WITH &&
    ) WHERE (capacity_one)
);
CREATE INDEX active_bookings_by_resource
    ON medsched.active_bookings USING gist (tenant_id, resource_id, busy);

-- Client idempotency keys with the first result (without PHI).
CREATE TABLE medsched.idempotency (
    tenant_id   text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- The transactional outbox; acknowledged events are deleted.
CREATE TABLE medsched.outbox (
    tenant_id      text NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    kind           text NOT NULL,
    due_at         timestamptz NOT NULL,
    appointment_id text,
    data           jsonb NOT NULL,
    lease_owner    text,
    lease_until    timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_due ON medsched.outbox (tenant_id, due_at, id);
CREATE INDEX outbox_appointment ON medsched.outbox (tenant_id, appointment_id)
    WHERE appointment_id IS NOT NULL;

CREATE TABLE medsched.waitlist (
    tenant_id  text NOT NULL,
    id         text NOT NULL,
    type_id    text NOT NULL,
    created_at timestamptz NOT NULL,
    data       jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX waitlist_by_type ON medsched.waitlist (tenant_id, type_id, created_at);

-- The audit trail: one hash chain per tenant, positions from 1.
CREATE TABLE medsched.audit (
    tenant_id      text NOT NULL,
    seq            bigint NOT NULL CHECK (seq > 0),
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    record         text NOT NULL,
    decision       text NOT NULL,
    reason_code    text NOT NULL,
    policy_version text NOT NULL,
    break_glass    boolean NOT NULL,
    prev_hash      text NOT NULL,
    hash           text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
