//! The engine over MemoryStore: booking, idempotency, holds, lifecycle,
//! outbox, waitlist, series, and races between threads.

use std::sync::Arc;

use chrono::Duration;
use medsched_core::policy::{Policy, Principal};
use medsched_core::records::*;
use medsched_core::{
    BookRequest, CancelReason, Engine, ManualClock, SeriesPolicy, SeriesProposal, SlotQuery,
};

use crate::common::*;

const NY: &str = "America/New_York";

fn tenant() -> TenantId {
    TenantId::from("clinic-1")
}

fn clinic_with_reminders() -> Clinic {
    let mut c = clinic(
        vec![resource("dr-a", NY), resource("dr-b", NY)],
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
    );
    c.appointment_types[0].buffer_after_min = 5;
    c.appointment_types[0].reminders_min = vec![24 * 60, 120];
    c
}

/// A policy granting everything tenant-wide to `ops`: these tests are about
/// booking, not access (see `access.rs`).
const OPS_POLICY: &str = r#"
version = "ops-1"
[roles.ops]
grants = [
  { action = "slots.read", scope = "tenant" }, { action = "appointment.read", scope = "tenant" },
  { action = "phi.read", scope = "tenant" }, { action = "appointment.book", scope = "tenant" },
  { action = "appointment.cancel", scope = "tenant" }, { action = "appointment.reschedule", scope = "tenant" },
  { action = "appointment.status", scope = "tenant" }, { action = "appointment.overbook", scope = "tenant" },
  { action = "booking.bypass_notice", scope = "tenant" }, { action = "waitlist.manage", scope = "tenant" },
  { action = "outbox.drain", scope = "tenant" }, { action = "catalog.manage", scope = "tenant" },
  { action = "audit.read", scope = "tenant" },
]
"#;

fn ops() -> Principal {
    as_user("ops-1")
}

fn as_user(user: &str) -> Principal {
    Principal {
        user: user.into(),
        tenant: tenant().0,
        roles: vec!["ops".into()],
        ..Principal::default()
    }
}

fn engine() -> (Engine<MemoryStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t("2027-03-10T12:00:00Z")));
    let e = Engine::new(
        MemoryStore::new(),
        clock.clone(),
        Policy::from_toml(OPS_POLICY).unwrap(),
    );
    e.put_catalog(&ops(), &clinic_with_reminders()).unwrap();
    (e, clock)
}

fn req(start: &str, resource: &str) -> BookRequest {
    BookRequest {
        type_id: "visit".into(),
        start: t(start),
        resources: vec![resource.into()],
        patient: Some("pat-1".into()),
        reason: Some("SENTINEL chest pain".into()),
        ..BookRequest::default()
    }
}

fn day_slots(e: &Engine<MemoryStore>, resource: &str) -> Vec<String> {
    let q = SlotQuery {
        type_id: "visit".into(),
        from: t("2027-03-16T00:00:00Z"),
        to: t("2027-03-17T00:00:00Z"),
        now: e.now(),
        resources: vec![resource.into()],
    };
    e.slots(&ops(), &q)
        .unwrap()
        .entries
        .iter()
        .map(|x| medsched_core::time::format_utc(x.start))
        .collect()
}

#[test]
fn engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine<MemoryStore>>();
}

#[test]
fn booking_takes_the_slot_and_writes_events() {
    let (e, _) = engine();
    assert_eq!(day_slots(&e, "dr-a").len(), 5);
    let b = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    assert!(!b.replayed);
    assert_eq!(b.appointment.version, 1);
    assert_eq!(
        b.appointment.appointment.buffer_after_min, 5,
        "buffers are recorded at booking"
    );
    // 09:00 taken; 09:30 too: the recorded 5-minute buffer after 09:00's
    // appointment overlaps it.
    assert_eq!(
        day_slots(&e, "dr-a"),
        [
            "2027-03-16T14:00:00Z",
            "2027-03-16T14:30:00Z",
            "2027-03-16T15:00:00Z"
        ]
    );
    let err = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap_err();
    assert_eq!(err.code(), "slot_unavailable");
    assert!(err.to_string().contains("overlap"), "{err}");
    assert!(!err.to_string().contains("SENTINEL"));
    // Booked event now; reminders at 24 h and 2 h before.
    let events = e.claim_events(&ops(), "w1", 10, 60).unwrap();
    assert_eq!(
        events.iter().map(|x| x.kind).collect::<Vec<_>>(),
        [EventKind::Booked]
    );
    assert!(
        !format!("{events:?}").contains("SENTINEL"),
        "events carry ids, not PHI"
    );
}

#[test]
fn any_free_resource_is_assigned_when_none_is_named() {
    let (e, _) = engine();
    let mut r = req("2027-03-16T13:00:00Z", "dr-a");
    r.resources.clear();
    let first = e.book(&ops(), &r).unwrap();
    r.patient = Some("pat-2".into());
    let second = e.book(&ops(), &r).unwrap();
    assert_ne!(
        first.appointment.appointment.resources,
        second.appointment.appointment.resources
    );
    r.patient = Some("pat-3".into());
    assert_eq!(e.book(&ops(), &r).unwrap_err().code(), "slot_unavailable");
}

#[test]
fn idempotency_key_replays_and_refuses_changed_parameters() {
    let (e, _) = engine();
    let mut r = req("2027-03-16T13:00:00Z", "dr-a");
    r.idempotency_key = Some("celery-task-42".into());
    let first = e.book(&ops(), &r).unwrap();
    let again = e.book(&ops(), &r).unwrap();
    assert!(again.replayed);
    assert_eq!(
        again.appointment.appointment.id,
        first.appointment.appointment.id
    );
    let mut changed = r.clone();
    changed.start = t("2027-03-16T14:00:00Z");
    assert_eq!(
        e.book(&ops(), &changed).unwrap_err().code(),
        "idempotency_mismatch"
    );
    assert_eq!(day_slots(&e, "dr-a").len(), 3, "exactly one booking");
}

#[test]
fn eight_threads_racing_for_one_slot_give_one_winner() {
    let (e, _) = engine();
    let results: Vec<Result<_, _>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let e = &e;
                s.spawn(move || {
                    let mut r = req("2027-03-16T13:00:00Z", "dr-a");
                    r.patient = Some(format!("pat-{i}"));
                    e.book(&ops(), &r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code() == "slot_unavailable"));
}

#[test]
fn holds_block_until_they_lapse_and_confirm_before() {
    let (e, clock) = engine();
    let h = e
        .hold(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"), Some(600))
        .unwrap();
    assert_eq!(h.appointment.appointment.status, AppointmentStatus::Pending);
    assert!(!day_slots(&e, "dr-a").contains(&"2027-03-16T13:00:00Z".to_owned()));
    let other = e.book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"));
    assert_eq!(other.unwrap_err().code(), "slot_unavailable");
    clock.advance(Duration::minutes(11));
    assert!(
        day_slots(&e, "dr-a").contains(&"2027-03-16T13:00:00Z".to_owned()),
        "lapsed hold frees the slot"
    );
    let id = h.appointment.appointment.id.0.clone();
    assert_eq!(
        e.confirm(&ops(), &id, 1).unwrap_err().code(),
        "hold_expired"
    );

    let h2 = e
        .hold(&ops(), &req("2027-03-16T14:00:00Z", "dr-a"), None)
        .unwrap();
    let confirmed = e
        .confirm(&ops(), h2.appointment.appointment.id.as_str(), 1)
        .unwrap();
    assert_eq!(confirmed.appointment.status, AppointmentStatus::Booked);
    assert_eq!(confirmed.version, 2);
    assert_eq!(confirmed.hold_expires_at, None);
}

#[test]
fn a_lapsed_hold_moved_to_booked_is_checked_like_a_new_booking() {
    // Found by the `engine_ops` fuzz target: a pending hold that lapsed was
    // moved to `booked` without a claim, double-booking the slot another
    // booking had taken since.
    let (e, clock) = engine();
    let h = e
        .hold(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"), Some(600))
        .unwrap();
    clock.advance(Duration::minutes(11));
    e.book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let id = h.appointment.appointment.id.0.clone();
    let moved = e.transition(&ops(), &id, 1, AppointmentStatus::Booked);
    assert_eq!(moved.unwrap_err().code(), "slot_unavailable");
    // With the slot free again, the same move claims it.
    let h = e
        .hold(&ops(), &req("2027-03-16T15:00:00Z", "dr-a"), Some(600))
        .unwrap();
    clock.advance(Duration::minutes(11));
    let id = h.appointment.appointment.id.0.clone();
    let moved = e
        .transition(&ops(), &id, 1, AppointmentStatus::Booked)
        .unwrap();
    assert_eq!(moved.appointment.status, AppointmentStatus::Booked);
    let other = e.book(&ops(), &req("2027-03-16T15:00:00Z", "dr-a"));
    assert_eq!(other.unwrap_err().code(), "slot_unavailable");
}

#[test]
fn lifecycle_follows_the_fhir_table_with_versions() {
    let (e, _) = engine();
    let b = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let id = b.appointment.appointment.id.0.clone();
    let arrived = e
        .transition(&ops(), &id, 1, AppointmentStatus::Arrived)
        .unwrap();
    assert_eq!(arrived.version, 2);
    let err = e
        .transition(&ops(), &id, 1, AppointmentStatus::Fulfilled)
        .unwrap_err();
    assert_eq!(err.code(), "version_conflict");
    let err = e
        .transition(&ops(), &id, 2, AppointmentStatus::Booked)
        .unwrap_err();
    assert_eq!(err.code(), "invalid_transition");
    assert_eq!(
        err.to_string(),
        format!("cannot change appointment `{id}` from `arrived` to `booked`")
    );
    e.transition(&ops(), &id, 2, AppointmentStatus::Fulfilled)
        .unwrap();
    assert_eq!(
        e.cancel(&ops(), &id, 3, CancelReason::PatientRequest, None)
            .unwrap_err()
            .code(),
        "invalid_transition"
    );
}

#[test]
fn cancel_releases_time_drops_reminders_and_offers_the_waitlist() {
    let (e, clock) = engine();
    e.add_waitlist(
        &ops(),
        WaitlistEntry {
            id: "w-1".into(),
            patient: "pat-9".into(),
            type_id: "visit".into(),
            resources: vec![],
            from: t("2027-03-15T00:00:00Z"),
            to: t("2027-03-20T00:00:00Z"),
            created_at: t("2027-03-01T00:00:00Z"),
        },
    )
    .unwrap();
    let b = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let id = b.appointment.appointment.id.0.clone();
    let cancelled = e
        .cancel(
            &as_user("reception-7"),
            &id,
            1,
            CancelReason::PatientRequest,
            None,
        )
        .unwrap();
    assert_eq!(cancelled.appointment.status, AppointmentStatus::Cancelled);
    // The freed slot is held for pat-9 now.
    let offer_id = format!("offer-w-1-{id}");
    let offer = e.appointment(&ops(), &offer_id).unwrap();
    assert_eq!(offer.appointment.patient, Some("pat-9".into()));
    assert!(offer.hold_expires_at.is_some());
    assert!(!day_slots(&e, "dr-a").contains(&"2027-03-16T13:00:00Z".to_owned()));
    // Much later, reminders of the cancelled appointment never come.
    clock.set(t("2027-03-16T12:59:00Z"));
    let events = e.claim_events(&ops(), "w1", 100, 60).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|x| x.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Booked,
            EventKind::Cancelled,
            EventKind::WaitlistOffer
        ]
    );
    let cancel_event = &events[1];
    assert_eq!(cancel_event.data.actor.as_deref(), Some("reception-7"));
    assert_eq!(
        cancel_event.data.reason_code.as_deref(),
        Some("patient_request")
    );
    // The offer lapses after the configured 15 minutes.
    assert!(day_slots(&e, "dr-a").contains(&"2027-03-16T13:00:00Z".to_owned()));
}

#[test]
fn reminders_come_due_at_their_offsets_and_follow_a_reschedule() {
    let (e, clock) = engine();
    let b = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let id = b.appointment.appointment.id.0.clone();
    let booked = e.claim_events(&ops(), "w", 10, 60).unwrap();
    for ev in &booked {
        e.ack_event(&ops(), ev.id, "w").unwrap();
    }
    // Move it a day later: the old reminders are gone, new ones follow.
    let moved = e
        .reschedule(&ops(), &id, 1, t("2027-03-17T13:00:00Z"), None)
        .unwrap();
    assert_eq!(moved.version, 2);
    assert!(
        day_slots(&e, "dr-a").contains(&"2027-03-16T13:00:00Z".to_owned()),
        "old time released"
    );
    for ev in e.claim_events(&ops(), "w", 10, 60).unwrap() {
        assert_eq!(ev.kind, EventKind::Rescheduled);
        e.ack_event(&ops(), ev.id, "w").unwrap();
    }
    clock.set(t("2027-03-15T13:00:00Z")); // 24 h before the old time
    assert!(e
        .claim_events(&ops(), "w", 10, 60)
        .unwrap()
        .iter()
        .all(|x| x.kind != EventKind::ReminderDue));
    clock.set(t("2027-03-16T13:00:00Z")); // 24 h before the new time
    let due = e.claim_events(&ops(), "w", 10, 60).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].kind, due[0].data.offset_min),
        (EventKind::ReminderDue, Some(1440))
    );
    assert_eq!(due[0].data.start, Some(t("2027-03-17T13:00:00Z")));
    // A worker that dies: after the lease the event comes back.
    clock.advance(Duration::seconds(61));
    let again = e.claim_events(&ops(), "w2", 10, 60).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        e.ack_event(&ops(), due[0].id, "w").unwrap_err().code(),
        "lease_lost"
    );
    e.ack_event(&ops(), again[0].id, "w2").unwrap();
}

#[test]
fn reschedule_into_a_taken_slot_changes_nothing() {
    let (e, _) = engine();
    let a = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    e.book(&ops(), &req("2027-03-16T15:00:00Z", "dr-a"))
        .unwrap();
    let err = e
        .reschedule(
            &ops(),
            a.appointment.appointment.id.as_str(),
            1,
            t("2027-03-16T15:00:00Z"),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "slot_unavailable");
    let still = e
        .appointment(&ops(), a.appointment.appointment.id.as_str())
        .unwrap();
    assert_eq!(
        (still.version, still.appointment.start),
        (1, Some(t("2027-03-16T13:00:00Z")))
    );
    // Moving within its own time (30 min later, overlapping itself) works.
    let moved = e
        .reschedule(
            &ops(),
            a.appointment.appointment.id.as_str(),
            1,
            t("2027-03-16T13:30:00Z"),
            None,
        )
        .unwrap();
    assert_eq!(moved.appointment.start, Some(t("2027-03-16T13:30:00Z")));
}

#[test]
fn series_all_or_nothing_and_book_free() {
    let (e, _) = engine();
    e.book(&ops(), &req("2027-03-23T13:00:00Z", "dr-a"))
        .unwrap();
    let p = SeriesProposal {
        type_id: "visit".into(),
        zone: NY.into(),
        dtstart: wall("2027-03-16T09:00"),
        rrule: "FREQ=WEEKLY;COUNT=3".into(),
        resources: vec!["dr-a".into()],
        patient: Some("pat-5".into()),
    };
    let err = e
        .book_series(&ops(), &p, SeriesPolicy::AllOrNothing, None)
        .unwrap_err();
    assert_eq!(err.code(), "slot_unavailable");
    assert_eq!(day_slots(&e, "dr-a").len(), 5, "nothing booked");
    let r = e
        .book_series(&ops(), &p, SeriesPolicy::BookFree, Some("series-1"))
        .unwrap();
    assert_eq!(r.booked.len(), 2);
    let bookable: Vec<bool> = r.report.occurrences.iter().map(|o| o.bookable).collect();
    assert_eq!(bookable, [true, false, true]);
    let replay = e
        .book_series(&ops(), &p, SeriesPolicy::BookFree, Some("series-1"))
        .unwrap();
    assert_eq!(replay.booked.len(), 2);
}

#[test]
fn explain_through_the_engine_names_the_appointment() {
    let (e, _) = engine();
    let b = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let x = e
        .explain(&ops(), "visit", "dr-a", t("2027-03-16T13:00:00Z"), None)
        .unwrap();
    assert!(!x.bookable);
    assert_eq!(
        x.reasons,
        [medsched_core::Reason::Overlap {
            appointment: b.appointment.appointment.id.0.clone()
        }]
    );
}

#[test]
fn engine_slots_equal_core_slots_on_the_same_data() {
    // The store-backed query and the in-memory schedule agree.
    let (e, _) = engine();
    for (i, start) in [
        "2027-03-16T13:00:00Z",
        "2027-03-16T15:00:00Z",
        "2027-03-17T14:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let mut r = req(start, if i % 2 == 0 { "dr-a" } else { "dr-b" });
        r.patient = Some(format!("p{i}"));
        e.book(&ops(), &r).unwrap();
    }
    let mut c = clinic_with_reminders();
    let q = SlotQuery {
        type_id: "visit".into(),
        from: t("2027-03-15T00:00:00Z"),
        to: t("2027-03-20T00:00:00Z"),
        now: e.now(),
        resources: vec![],
    };
    let via_engine = e.slots(&ops(), &q).unwrap();
    // Rebuild the same clinic as a file with the stored appointments.
    let mut rows = Vec::new();
    let ids: Vec<ResourceId> = vec!["dr-a".into(), "dr-b".into()];
    e.store()
        .bookings(
            &tenant(),
            &BookingsQuery {
                resources: &ids,
                from: 0,
                to: i64::MAX / 2,
                now: e.now().timestamp(),
                type_id: None,
            },
            &mut rows,
        )
        .unwrap();
    let mut keys: Vec<u64> = rows.iter().map(|r| r.key).collect();
    keys.sort_unstable();
    keys.dedup();
    for k in keys {
        c.appointments.push(
            e.store()
                .appointment_by_key(&tenant(), k)
                .unwrap()
                .appointment
                .clone(),
        );
    }
    let via_core = medsched_core::Schedule::new(&c).unwrap().slots(&q).unwrap();
    assert_eq!(via_engine.entries, via_core.entries);
    assert!(!via_engine.entries.is_empty());
}

#[test]
fn overbooking_is_explicit() {
    let (e, _) = engine();
    e.book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let mut r = req("2027-03-16T13:00:00Z", "dr-a");
    r.patient = Some("pat-2".into());
    assert_eq!(e.book(&ops(), &r).unwrap_err().code(), "slot_unavailable");
    r.overbook = true;
    let b = e.book(&ops(), &r).unwrap();
    assert_eq!(
        b.appointment.appointment.resources,
        vec![ResourceId::from("dr-a")]
    );
    // Overbooking needs named resources: the engine will not pick one for it.
    let mut b2 = req("2027-03-16T13:00:00Z", "dr-b");
    b2.patient = Some("pat-4".into());
    e.book(&ops(), &b2).unwrap();
    let mut any = r.clone();
    any.resources.clear();
    any.patient = Some("pat-3".into());
    assert_eq!(e.book(&ops(), &any).unwrap_err().code(), "slot_unavailable");
}

#[test]
fn proposals_become_bookings_only_where_the_slot_is_free() {
    let (e, _) = engine();
    // A proposal holds no time.
    let mut proposal = req("2027-03-16T13:00:00Z", "dr-a");
    proposal.id = Some("prop-1".into());
    e.store()
        .commit(
            &tenant(),
            Batch {
                now: e.now(),
                idempotency: None,
                ops: vec![Op::Insert {
                    appointment: Appointment {
                        id: "prop-1".into(),
                        type_id: Some("visit".into()),
                        patient: Some("pat-7".into()),
                        resources: vec!["dr-a".into()],
                        start: Some(t("2027-03-16T13:00:00Z")),
                        end: Some(t("2027-03-16T13:30:00Z")),
                        status: AppointmentStatus::Proposed,
                        buffer_before_min: 0,
                        buffer_after_min: 5,
                        reason: None,
                        notes: None,
                    },
                    hold_expires_at: None,
                    claims: vec![],
                    overbook: false,
                }],
            },
        )
        .unwrap();
    assert_eq!(day_slots(&e, "dr-a").len(), 5, "a proposal holds nothing");
    let other = e
        .book(&ops(), &req("2027-03-16T13:00:00Z", "dr-a"))
        .unwrap();
    let err = e
        .transition(&ops(), "prop-1", 1, AppointmentStatus::Booked)
        .unwrap_err();
    assert_eq!(err.code(), "slot_unavailable");
    e.cancel(
        &ops(),
        other.appointment.appointment.id.as_str(),
        1,
        CancelReason::ClinicClosed,
        None,
    )
    .unwrap();
    let booked = e
        .transition(&ops(), "prop-1", 1, AppointmentStatus::Booked)
        .unwrap();
    assert_eq!(booked.appointment.status, AppointmentStatus::Booked);
}
