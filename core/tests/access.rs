//! Access control through the engine: every operation decided by the
//! shipped clinic policy, PHI redacted unless allowed, break-glass, and an
//! audit trail that is hash-chained and must be written.

use std::sync::Arc;

use chrono::Duration;
use medsched_core::policy::{Policy, Principal};
use medsched_core::records::*;
use medsched_core::{BookRequest, CancelReason, Engine, ManualClock};

use crate::common::*;

const NY: &str = "America/New_York";
const SENTINEL: &str = "SENTINEL-7f3a chest pain";

fn policy() -> Policy {
    Policy::from_toml(include_str!("../../fixtures/policy-clinic.toml")).unwrap()
}

fn who(user: &str, role: &str) -> Principal {
    Principal {
        user: user.into(),
        tenant: "t1".into(),
        roles: vec![role.into()],
        ..Principal::default()
    }
}

fn provider_a() -> Principal {
    Principal {
        resources: vec!["dr-a".into()],
        departments: vec!["cardiology".into()],
        ..who("dr-a-user", "provider")
    }
}

fn patient(id: &str) -> Principal {
    Principal {
        patient: Some(id.into()),
        ..who(&format!("user-{id}"), "patient")
    }
}

fn clinic_c() -> Clinic {
    let mut a = resource("dr-a", NY);
    a.department = Some("cardiology".into());
    let mut b = resource("dr-b", NY);
    b.department = Some("oncology".into());
    clinic(
        vec![a, b],
        vec![
            hours(
                "dr-a",
                "2027-03-01T09:00",
                "12:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
            hours(
                "dr-b",
                "2027-03-01T09:00",
                "12:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
        ],
        vec![appt_type("visit", 30, 30)],
    )
}

fn setup_with<S: Store>(store: S) -> (Engine<S>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t("2027-03-10T12:00:00Z")));
    let e = Engine::new(store, clock.clone(), policy());
    e.put_catalog(&who("admin", "clinic_admin"), &clinic_c())
        .unwrap();
    (e, clock)
}

fn setup() -> (Engine<MemoryStore>, Arc<ManualClock>) {
    setup_with(MemoryStore::new())
}

fn visit(start: &str, resource: &str, pat: &str) -> BookRequest {
    BookRequest {
        type_id: "visit".into(),
        start: t(start),
        resources: vec![resource.into()],
        patient: Some(pat.into()),
        reason: Some(SENTINEL.into()),
        notes: Some(format!("{SENTINEL} notes")),
        ..BookRequest::default()
    }
}

fn audit(e: &Engine<MemoryStore>) -> Vec<AuditRecord> {
    e.audit_trail(&who("aud", "auditor"), 1, 10_000).unwrap()
}

#[test]
fn receptionist_books_for_anyone_but_never_sees_phi() {
    let (e, _) = setup();
    let desk = who("desk-1", "receptionist");
    let b = e
        .book(&desk, &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"))
        .unwrap();
    assert_eq!(
        b.appointment.appointment.reason, None,
        "redacted in the booking result"
    );
    let id = b.appointment.appointment.id.0.clone();
    let read = e.appointment(&desk, &id).unwrap();
    assert_eq!(
        (
            read.appointment.reason.clone(),
            read.appointment.notes.clone()
        ),
        (None, None)
    );
    // The provider it is assigned to sees it, and that read is audited.
    let seen = e.appointment(&provider_a(), &id).unwrap();
    assert_eq!(
        seen.appointment.reason.as_ref().map(|p| p.0.as_str()),
        Some(SENTINEL)
    );
    let trail = audit(&e);
    let phi_reads: Vec<&AuditRecord> = trail
        .iter()
        .filter(|r| r.entry.action == "phi.read")
        .collect();
    assert_eq!(phi_reads.len(), 1);
    assert_eq!(phi_reads[0].entry.actor, "dr-a-user");
    assert_eq!(phi_reads[0].entry.record, id);
    assert_eq!(phi_reads[0].entry.policy_version, "clinic-2027.1");
    // No PHI anywhere in the trail.
    assert!(!format!("{trail:?}").contains("SENTINEL"));
    assert!(!serde_json::to_string(&trail).unwrap().contains("SENTINEL"));
}

#[test]
fn patients_book_their_own_and_nothing_else() {
    let (e, _) = setup();
    let me = patient("pat-1");
    let mine = e
        .book(&me, &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"))
        .unwrap();
    assert_eq!(
        mine.appointment
            .appointment
            .reason
            .as_ref()
            .map(|p| p.0.as_str()),
        Some(SENTINEL)
    );
    let err = e
        .book(&me, &visit("2027-03-16T14:00:00Z", "dr-a", "pat-2"))
        .unwrap_err();
    assert_eq!(err.code(), "permission_denied");
    assert_eq!(
        err.to_string(),
        "permission denied: appointment.book (no_grant)"
    );
    let other = e
        .book(
            &who("desk", "receptionist"),
            &visit("2027-03-16T15:00:00Z", "dr-b", "pat-2"),
        )
        .unwrap();
    let err = e
        .appointment(&me, other.appointment.appointment.id.as_str())
        .unwrap_err();
    assert_eq!(err.code(), "permission_denied");
    let err = e
        .cancel(
            &me,
            other.appointment.appointment.id.as_str(),
            1,
            CancelReason::PatientRequest,
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "permission_denied");
    // Every denied attempt is in the trail.
    let denials: Vec<String> = audit(&e)
        .iter()
        .filter(|r| r.entry.decision == "deny")
        .map(|r| {
            format!(
                "{} {} {}",
                r.entry.actor, r.entry.action, r.entry.reason_code
            )
        })
        .collect();
    assert_eq!(
        denials,
        [
            "user-pat-1 appointment.book no_grant",
            "user-pat-1 appointment.read no_grant",
            "user-pat-1 appointment.cancel no_grant"
        ]
    );
}

#[test]
fn another_tenant_sees_nothing() {
    let (e, _) = setup();
    let b = e
        .book(
            &who("desk", "receptionist"),
            &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"),
        )
        .unwrap();
    let mut stranger = who("desk-t2", "clinic_admin");
    stranger.tenant = "t2".into();
    let err = e
        .appointment(&stranger, b.appointment.appointment.id.as_str())
        .unwrap_err();
    assert_eq!(
        err.code(),
        "not_found",
        "the other tenant's data is not even visible"
    );
    assert!(e
        .audit_trail(
            &Principal {
                tenant: "t2".into(),
                ..who("aud", "auditor")
            },
            1,
            100
        )
        .unwrap()
        .is_empty());
}

#[test]
fn overbook_and_notice_bypass_need_their_permissions() {
    let (e, _) = setup();
    let desk = who("desk", "receptionist");
    e.book(&desk, &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"))
        .unwrap();
    let mut over = visit("2027-03-16T13:00:00Z", "dr-a", "pat-2");
    over.overbook = true;
    assert_eq!(
        e.book(&desk, &over).unwrap_err().code(),
        "permission_denied"
    );
    let admin = Principal {
        departments: vec!["cardiology".into()],
        ..who("adm", "clinic_admin")
    };
    e.book(&admin, &over).unwrap();
    // Inside the minimum notice: refused, unless bypassed by a permitted role.
    let mut c = clinic_c();
    c.appointment_types[0].min_notice_min = 48 * 60;
    e.put_catalog(&admin, &c).unwrap();
    let soon = visit("2027-03-11T14:00:00Z", "dr-a", "pat-3");
    assert_eq!(e.book(&desk, &soon).unwrap_err().code(), "slot_unavailable");
    let mut bypass = soon.clone();
    bypass.bypass_notice = true;
    assert_eq!(
        e.book(&desk, &bypass).unwrap_err().code(),
        "permission_denied"
    );
    e.book(&admin, &bypass).unwrap();
    // Never in the past.
    let mut past = visit("2027-03-09T14:00:00Z", "dr-a", "pat-4");
    past.bypass_notice = true;
    assert_eq!(
        e.book(&admin, &past).unwrap_err().code(),
        "slot_unavailable"
    );
}

#[test]
fn break_glass_opens_one_patient_for_a_while_and_is_flagged() {
    let (e, clock) = setup();
    let b = e
        .book(
            &who("desk", "receptionist"),
            &visit("2027-03-16T13:00:00Z", "dr-b", "pat-9"),
        )
        .unwrap();
    let id = b.appointment.appointment.id.0.clone();
    let mut nurse = Principal {
        departments: vec!["cardiology".into()],
        ..who("nurse-1", "nurse")
    };
    assert_eq!(
        e.appointment(&nurse, &id).unwrap_err().code(),
        "permission_denied"
    );
    assert_eq!(
        e.break_glass(&nurse, "pat-9", " ", 30).unwrap_err().code(),
        "invalid_input"
    );
    assert_eq!(
        e.break_glass(&nurse, "pat-9", "collapsed in lobby", 241)
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let elevation = e
        .break_glass(&nurse, "pat-9", "collapsed in lobby", 30)
        .unwrap();
    nurse.elevations.push(elevation);
    let seen = e.appointment(&nurse, &id).unwrap();
    assert_eq!(
        seen.appointment.reason.as_ref().map(|p| p.0.as_str()),
        Some(SENTINEL)
    );
    let flagged: Vec<String> = audit(&e)
        .iter()
        .filter(|r| r.entry.break_glass)
        .map(|r| format!("{} {}", r.entry.action, r.entry.decision))
        .collect();
    assert_eq!(
        flagged,
        [
            "break_glass.use allow",
            "appointment.read allow",
            "phi.read allow"
        ]
    );
    clock.advance(Duration::minutes(31));
    assert_eq!(
        e.appointment(&nurse, &id).unwrap_err().code(),
        "permission_denied",
        "no effect after expiry"
    );
    // A role the policy does not trust with break-glass is refused, and that is audited too.
    let err = e
        .break_glass(&who("desk", "receptionist"), "pat-9", "curious", 10)
        .unwrap_err();
    assert_eq!(err.code(), "permission_denied");
    assert!(audit(&e)
        .iter()
        .any(|r| r.entry.action == "break_glass.use" && r.entry.decision == "deny"));
}

#[test]
fn audit_chain_detects_edits_and_deletions() {
    let (e, _) = setup();
    let desk = who("desk", "receptionist");
    for (i, s) in [
        "2027-03-16T13:00:00Z",
        "2027-03-16T14:00:00Z",
        "2027-03-16T15:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        e.book(&desk, &visit(s, "dr-a", &format!("pat-{i}")))
            .unwrap();
    }
    let auditor = who("aud", "auditor");
    let n = e.verify_audit(&auditor).unwrap();
    assert!(n >= 4, "catalog + three bookings: {n}");
    let tenant = TenantId::from("t1");
    e.store()
        .tamper_with_audit(&tenant, |v| v[2].entry.actor = "someone-else".into());
    let err = e.verify_audit(&auditor).unwrap_err();
    assert_eq!(
        (err.code(), err.to_string()),
        (
            "integrity_error",
            "integrity check failed: audit record 3 fails its hash check".to_owned()
        )
    );
    e.store().tamper_with_audit(&tenant, |v| {
        v[2].entry.actor = "desk".into();
        v.remove(1);
    });
    assert_eq!(
        e.verify_audit(&auditor).unwrap_err().code(),
        "integrity_error"
    );
    assert_eq!(
        e.verify_audit(&who("desk", "receptionist"))
            .unwrap_err()
            .code(),
        "permission_denied"
    );
}

#[test]
fn policy_replacement_shows_in_the_trail() {
    let (e, _) = setup();
    let desk = who("desk", "receptionist");
    e.book(&desk, &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"))
        .unwrap();
    let text =
        include_str!("../../fixtures/policy-clinic.toml").replace("clinic-2027.1", "clinic-2027.2");
    e.replace_policy(Policy::from_toml(&text).unwrap());
    e.book(&desk, &visit("2027-03-16T14:00:00Z", "dr-a", "pat-2"))
        .unwrap();
    let versions: Vec<String> = audit(&e)
        .iter()
        .filter(|r| r.entry.action == "appointment.book")
        .map(|r| r.entry.policy_version.clone())
        .collect();
    assert_eq!(versions, ["clinic-2027.1", "clinic-2027.2"]);
}

/// A store whose audit writes fail.
struct FailingAudit(MemoryStore);

impl Store for FailingAudit {
    fn catalog(&self, t: &TenantId) -> Result<VersionedCatalog, StorageError> {
        self.0.catalog(t)
    }
    fn catalog_version(&self, t: &TenantId) -> Result<u64, StorageError> {
        self.0.catalog_version(t)
    }
    fn replace_catalog(&self, t: &TenantId, c: Clinic, v: u64) -> Result<u64, StorageError> {
        self.0.replace_catalog(t, c, v)
    }
    fn bookings(
        &self,
        t: &TenantId,
        q: &BookingsQuery<'_>,
        out: &mut Vec<BookingRow>,
    ) -> Result<(), StorageError> {
        self.0.bookings(t, q, out)
    }
    fn patient_bookings(
        &self,
        t: &TenantId,
        p: &PatientId,
        f: i64,
        to: i64,
        n: i64,
    ) -> Result<Vec<Arc<StoredAppointment>>, StorageError> {
        self.0.patient_bookings(t, p, f, to, n)
    }
    fn appointment(
        &self,
        t: &TenantId,
        id: &AppointmentId,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        self.0.appointment(t, id)
    }
    fn appointment_by_key(
        &self,
        t: &TenantId,
        k: AppointmentKey,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        self.0.appointment_by_key(t, k)
    }
    fn idempotent(
        &self,
        t: &TenantId,
        k: &str,
    ) -> Result<Option<(String, Committed)>, StorageError> {
        self.0.idempotent(t, k)
    }
    fn commit(&self, t: &TenantId, b: Batch) -> Result<Committed, StorageError> {
        if b.ops.iter().any(|o| matches!(o, Op::Audit(_))) {
            return Err(StorageError::new(
                StorageErrorKind::Unavailable,
                "audit log unreachable",
            ));
        }
        self.0.commit(t, b)
    }
    fn claim_events(
        &self,
        t: &TenantId,
        w: &str,
        m: usize,
        n: chrono::DateTime<chrono::Utc>,
        l: i64,
    ) -> Result<Vec<OutboxEvent>, StorageError> {
        self.0.claim_events(t, w, m, n, l)
    }
    fn ack_event(
        &self,
        t: &TenantId,
        id: u64,
        w: &str,
        n: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StorageError> {
        self.0.ack_event(t, id, w, n)
    }
    fn append_audit(&self, _: &TenantId, _: NewAudit) -> Result<AuditRecord, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Unavailable,
            "audit log unreachable",
        ))
    }
    fn audit_records(
        &self,
        t: &TenantId,
        f: u64,
        m: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        self.0.audit_records(t, f, m)
    }
    fn waitlist(
        &self,
        t: &TenantId,
        ty: &AppointmentTypeId,
    ) -> Result<Vec<WaitlistEntry>, StorageError> {
        self.0.waitlist(t, ty)
    }
}

#[test]
fn when_the_audit_cannot_be_written_the_operation_fails() {
    let store = FailingAudit(MemoryStore::new());
    let tenant = TenantId::from("t1");
    // Load the catalog directly (the admin's audited path would fail too).
    store.replace_catalog(&tenant, clinic_c(), 0).unwrap();
    let clock = Arc::new(ManualClock::new(t("2027-03-10T12:00:00Z")));
    let e = Engine::new(store, clock, policy());
    let err = e
        .book(
            &who("desk", "receptionist"),
            &visit("2027-03-16T13:00:00Z", "dr-a", "pat-1"),
        )
        .unwrap_err();
    assert_eq!(err.code(), "storage_unavailable");
    let ids = [ResourceId::from("dr-a")];
    let mut rows = Vec::new();
    e.store()
        .0
        .bookings(
            &tenant,
            &BookingsQuery {
                resources: &ids,
                from: 0,
                to: i64::MAX / 2,
                now: 0,
                type_id: None,
            },
            &mut rows,
        )
        .unwrap();
    assert!(rows.is_empty(), "nothing was booked");
    // A denied attempt whose audit cannot be written fails with the storage error, not a silent denial.
    let err = e
        .book(
            &patient("pat-1"),
            &visit("2027-03-16T13:00:00Z", "dr-a", "pat-2"),
        )
        .unwrap_err();
    assert_eq!(err.code(), "storage_unavailable");
    // Reading PHI with a failing audit fails rather than returning unaudited PHI.
    e.store()
        .0
        .commit(
            &tenant,
            Batch {
                now: t("2027-03-10T12:00:00Z"),
                idempotency: None,
                ops: vec![Op::Insert {
                    appointment: Appointment {
                        id: "a1".into(),
                        type_id: Some("visit".into()),
                        patient: Some("pat-1".into()),
                        resources: vec!["dr-a".into()],
                        start: Some(t("2027-03-17T13:00:00Z")),
                        end: Some(t("2027-03-17T13:30:00Z")),
                        status: AppointmentStatus::Booked,
                        buffer_before_min: 0,
                        buffer_after_min: 0,
                        reason: Some(Phi(SENTINEL.into())),
                        notes: None,
                    },
                    hold_expires_at: None,
                    claims: vec![],
                    overbook: false,
                }],
            },
        )
        .unwrap();
    assert_eq!(
        e.appointment(&provider_a(), "a1").unwrap_err().code(),
        "storage_unavailable"
    );
}
