//! Tenant isolation by row-level security, and the append-only audit table.

use chrono::{TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Claim, NewAudit, Op, Store, TenantId,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::pg::server;

fn booking(id: &str) -> Op {
    let at = |h| Utc.with_ymd_and_hms(2030, 1, 7, h, 0, 0).unwrap();
    Op::Insert {
        appointment: Appointment {
            id: id.into(),
            type_id: None,
            patient: Some("p-1".into()),
            resources: vec!["room".into()],
            start: Some(at(10)),
            end: Some(at(11)),
            status: AppointmentStatus::Booked,
            buffer_before_min: 0,
            buffer_after_min: 0,
            reason: None,
            notes: None,
        },
        hold_expires_at: None,
        claims: vec![Claim {
            resource: "room".into(),
            capacity: 1,
        }],
        overbook: false,
    }
}

fn count(c: &mut Client, tenant: Option<&str>, sql: &str) -> Result<i64, postgres::Error> {
    let mut tx = c.transaction()?;
    if let Some(t) = tenant {
        tx.execute("SELECT set_config('medsched.tenant', $1, true)", &[&t])?;
    }
    let n = tx.query_one(sql, &[])?.try_get(0)?;
    tx.commit()?;
    Ok(n)
}

#[test]
fn tenants_see_only_their_rows_and_audit_is_append_only() {
    let owner_url = server().fresh_database("rls");
    let owner = PgStore::connect(&owner_url, 1).unwrap();
    owner.migrate().unwrap();
    let mut admin = Client::connect(&owner_url, NoTls).unwrap();
    admin
        .batch_execute("CREATE ROLE rls_app LOGIN NOSUPERUSER NOBYPASSRLS")
        .unwrap();
    owner.grant_runtime_role("rls_app").unwrap();
    assert_eq!(
        owner
            .grant_runtime_role("x; DROP TABLE y")
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let app_url = owner_url.replace("user=postgres", "user=rls_app");
    let app = PgStore::connect(&app_url, 2).unwrap();

    // The runtime role is neither superuser, nor BYPASSRLS, nor owner.
    let row = admin
        .query_one(
            "SELECT r.rolsuper, r.rolbypassrls,
                    (SELECT count(*) FROM pg_tables
                     WHERE schemaname = 'medsched' AND tableowner = 'rls_app')
             FROM pg_roles r WHERE r.rolname = 'rls_app'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, bool>(0),
            row.get::<_, bool>(1),
            row.get::<_, i64>(2)
        ),
        (false, false, 0)
    );

    let (a, b) = (TenantId("tenant-a".into()), TenantId("tenant-b".into()));
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    for (t, id) in [(&a, "a-1"), (&b, "b-1"), (&b, "b-2-other-room")] {
        let mut op = booking(id);
        if let Op::Insert {
            appointment,
            claims,
            ..
        } = &mut op
        {
            if id.ends_with("other-room") {
                appointment.resources = vec!["room-2".into()];
                claims[0].resource = "room-2".into();
            }
        }
        app.commit(
            t,
            Batch {
                now,
                idempotency: None,
                ops: vec![op],
            },
        )
        .unwrap();
    }
    let entry = NewAudit {
        at: now,
        actor: "u".into(),
        action: "appointment.book".into(),
        record: "a-1".into(),
        decision: "allow".into(),
        reason_code: "r".into(),
        policy_version: "v1".into(),
        break_glass: false,
    };
    app.append_audit(&a, entry.clone()).unwrap();
    app.append_audit(&b, entry).unwrap();
    // Through the store: same ids and resources, separate tenants.
    assert!(app.appointment(&a, &"b-1".into()).is_err());
    assert_eq!(app.appointment(&b, &"b-1".into()).unwrap().version, 1);

    let mut c = Client::connect(&app_url, NoTls).unwrap();
    for table in [
        "appointments",
        "active_bookings",
        "audit",
        "catalogs",
        "outbox",
        "waitlist",
        "idempotency",
    ] {
        let of_b = format!("SELECT count(*) FROM medsched.{table} WHERE tenant_id = 'tenant-b'");
        assert_eq!(
            count(&mut c, Some("tenant-a"), &of_b).unwrap(),
            0,
            "{table}"
        );
    }
    let all = "SELECT count(*) FROM medsched.appointments";
    assert_eq!(count(&mut c, Some("tenant-a"), all).unwrap(), 1);
    assert_eq!(count(&mut c, Some("tenant-b"), all).unwrap(), 2);

    // No tenant set: the transaction fails, also on a connection that set
    // one in an earlier transaction.
    for _ in 0..2 {
        let e = count(&mut c, None, all).unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    }

    // Writing another tenant's row is refused by the policy.
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT set_config('medsched.tenant', 'tenant-a', true)",
        &[],
    )
    .unwrap();
    let e = tx
        .execute(
            "INSERT INTO medsched.waitlist (tenant_id, id, type_id, created_at, data)
             VALUES ('tenant-b', 'w', 't', now(), '{}')",
            &[],
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    drop(tx);

    // The audit table is append-only for the runtime role.
    for sql in [
        "UPDATE medsched.audit SET actor = 'someone else'",
        "DELETE FROM medsched.audit",
    ] {
        let mut tx = c.transaction().unwrap();
        tx.execute(
            "SELECT set_config('medsched.tenant', 'tenant-a', true)",
            &[],
        )
        .unwrap();
        let e = tx.execute(sql, &[]).unwrap_err();
        assert_eq!(
            e.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    // The superuser (migrations, operators) still sees everything.
    assert_eq!(
        admin
            .query_one("SELECT count(*) FROM medsched.appointments", &[])
            .unwrap()
            .get::<_, i64>(0),
        3
    );
}
