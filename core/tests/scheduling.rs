//! Availability, slots, explanations and conflicts on small clinics.

use crate::common::*;
use medsched_core::records::*;
use medsched_core::{Proposal, Reason, Schedule, SeriesProposal, SlotQuery};

const NY: &str = "America/New_York";

/// Dr A and Dr B (New York, Mon-Fri 09:00-12:00), room 1 and room 2.
fn base() -> Clinic {
    let mut rooms = vec![resource("room-1", NY), resource("room-2", NY)];
    for r in &mut rooms {
        r.kind = ResourceKind::Room;
        r.tags = vec!["room".into()];
    }
    let mut c = clinic(
        vec![
            resource("dr-a", NY),
            resource("dr-b", NY),
            rooms[0].clone(),
            rooms[1].clone(),
        ],
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
            hours(
                "room-1",
                "2027-03-01T09:00",
                "12:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
            hours(
                "room-2",
                "2027-03-01T09:00",
                "12:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
        ],
        vec![appt_type("visit", 30, 30)],
    );
    let mut procedure = appt_type("procedure", 60, 30);
    procedure.requirements = vec![
        Requirement {
            count: 1,
            resources: vec!["dr-a".into(), "dr-b".into()],
            tag: None,
        },
        Requirement {
            count: 1,
            resources: vec![],
            tag: Some("room".into()),
        },
    ];
    c.appointment_types.push(procedure);
    c
}

// Tuesday 2027-03-16, EDT: 09:00 local = 13:00Z.
const DAY_FROM: &str = "2027-03-16T00:00:00Z";
const DAY_TO: &str = "2027-03-17T00:00:00Z";
const NOW: &str = "2027-03-01T00:00:00Z";

fn query(ty: &str, resources: &[&str]) -> SlotQuery {
    SlotQuery {
        type_id: ty.into(),
        from: t(DAY_FROM),
        to: t(DAY_TO),
        now: t(NOW),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn starts(s: &Schedule, q: &SlotQuery, resource: &str) -> Vec<String> {
    s.slots(q)
        .unwrap()
        .entries
        .iter()
        .filter(|e| s.resource_id(e.resource) == Some(resource))
        .map(|e| medsched_core::time::format_utc(e.start))
        .collect()
}

fn codes(reasons: &[Reason]) -> Vec<&'static str> {
    reasons.iter().map(Reason::code).collect()
}

#[test]
fn six_slots_per_morning_on_a_half_hour_grid() {
    let s = Schedule::new(&base()).unwrap();
    let got = starts(&s, &query("visit", &["dr-a"]), "dr-a");
    assert_eq!(
        got,
        [
            "2027-03-16T13:00:00Z",
            "2027-03-16T13:30:00Z",
            "2027-03-16T14:00:00Z",
            "2027-03-16T14:30:00Z",
            "2027-03-16T15:00:00Z",
            "2027-03-16T15:30:00Z"
        ]
    );
}

#[test]
fn override_replaces_the_date_and_can_close_it() {
    let mut c = base();
    c.overrides.push(DateOverride {
        resource: "dr-a".into(),
        date: date("2027-03-16"),
        blocks: vec![LocalBlock {
            start: hm("14:00"),
            end: hm("15:00"),
        }],
    });
    c.overrides.push(DateOverride {
        resource: "dr-b".into(),
        date: date("2027-03-16"),
        blocks: vec![],
    });
    let s = Schedule::new(&c).unwrap();
    assert_eq!(
        starts(&s, &query("visit", &[]), "dr-a"),
        ["2027-03-16T18:00:00Z", "2027-03-16T18:30:00Z"]
    );
    assert!(starts(&s, &query("visit", &[]), "dr-b").is_empty());
    let e = s
        .explain("visit", "dr-b", t("2027-03-16T13:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["outside_hours"]);
}

#[test]
fn recorded_buffers_and_releasing_statuses() {
    let mut c = base();
    let mut a = appointment("a1", "dr-a", "2027-03-16T14:00:00Z", "2027-03-16T14:30:00Z");
    a.buffer_after_min = 15;
    c.appointments.push(a);
    let mut gone = appointment("a2", "dr-a", "2027-03-16T13:00:00Z", "2027-03-16T13:30:00Z");
    gone.status = AppointmentStatus::Cancelled;
    c.appointments.push(gone);
    let mut err = appointment("a3", "dr-a", "2027-03-16T15:30:00Z", "2027-03-16T16:00:00Z");
    err.status = AppointmentStatus::EnteredInError;
    c.appointments.push(err);
    let s = Schedule::new(&c).unwrap();
    // 14:00 taken, 14:30 blocked by a1's recorded 15-minute buffer.
    assert_eq!(
        starts(&s, &query("visit", &["dr-a"]), "dr-a"),
        [
            "2027-03-16T13:00:00Z",
            "2027-03-16T13:30:00Z",
            "2027-03-16T15:00:00Z",
            "2027-03-16T15:30:00Z"
        ]
    );
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T14:30:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(
        e.reasons,
        [Reason::Buffer {
            appointment: "a1".into()
        }]
    );
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T14:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(
        e.reasons,
        [Reason::Overlap {
            appointment: "a1".into()
        }]
    );
}

#[test]
fn type_buffers_must_fit_in_hours_and_between_appointments() {
    let mut c = base();
    c.appointment_types[0].buffer_before_min = 10;
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-16T14:00:00Z",
        "2027-03-16T14:30:00Z",
    ));
    let s = Schedule::new(&c).unwrap();
    // 09:00 is out: its buffer starts at 08:50. 10:30 is out: its buffer overlaps a1.
    let got = starts(&s, &query("visit", &["dr-a"]), "dr-a");
    assert_eq!(
        got,
        [
            "2027-03-16T13:30:00Z",
            "2027-03-16T15:00:00Z",
            "2027-03-16T15:30:00Z"
        ]
    );
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T13:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["outside_hours"]);
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T14:30:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(
        e.reasons,
        [Reason::Buffer {
            appointment: "a1".into()
        }]
    );
}

#[test]
fn capacity_above_one_fills_up() {
    let mut c = base();
    c.resources[2].capacity = 2; // room-1
    c.appointments.push(appointment(
        "a1",
        "room-1",
        "2027-03-16T13:00:00Z",
        "2027-03-16T14:00:00Z",
    ));
    let mut visit = c.appointment_types[0].clone();
    visit.id = "room-visit".into();
    visit.requirements = vec![Requirement {
        count: 1,
        resources: vec!["room-1".into()],
        tag: None,
    }];
    c.appointment_types.push(visit);
    let s = Schedule::new(&c).unwrap();
    assert_eq!(starts(&s, &query("room-visit", &[]), "room-1").len(), 6);
    c.appointments.push(appointment(
        "a2",
        "room-1",
        "2027-03-16T13:30:00Z",
        "2027-03-16T14:30:00Z",
    ));
    let s = Schedule::new(&c).unwrap();
    // Full where both overlap: 13:30-14:00.
    assert_eq!(starts(&s, &query("room-visit", &[]), "room-1").len(), 5);
    let e = s
        .explain(
            "room-visit",
            "room-1",
            t("2027-03-16T13:30:00Z"),
            t(NOW),
            None,
        )
        .unwrap();
    assert_eq!(
        e.reasons,
        [Reason::Capacity {
            capacity: 2,
            appointments: vec!["a1".into(), "a2".into()]
        }]
    );
}

#[test]
fn requirement_groups_need_all_at_once_and_report_assignment() {
    let mut c = base();
    // dr-a busy 09:00-10:00, room-1 busy 10:00-11:00, room-2 closed all day.
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-16T13:00:00Z",
        "2027-03-16T14:00:00Z",
    ));
    c.appointments.push(appointment(
        "a2",
        "room-1",
        "2027-03-16T14:00:00Z",
        "2027-03-16T15:00:00Z",
    ));
    c.overrides.push(DateOverride {
        resource: "room-2".into(),
        date: date("2027-03-16"),
        blocks: vec![],
    });
    let s = Schedule::new(&c).unwrap();
    let slots = s.slots(&query("procedure", &[])).unwrap();
    let starts: Vec<String> = slots
        .assignments()
        .iter()
        .map(|a| medsched_core::time::format_utc(a.start))
        .collect();
    // 09:00: dr-b + room-1. 09:30: room-1 busy from 10:00. 10:00-10:30: no room. 11:00: any doctor + room-1.
    assert_eq!(starts, ["2027-03-16T13:00:00Z", "2027-03-16T15:00:00Z"]);
    let first = &slots.assignments()[0];
    let names: Vec<Vec<&str>> = first
        .groups
        .iter()
        .map(|g| g.iter().map(|r| s.resource_id(*r).unwrap()).collect())
        .collect();
    assert_eq!(names, [vec!["dr-b"], vec!["room-1"]]);
    // Entries list each resource that could take part.
    let at_11: Vec<&str> = slots
        .entries
        .iter()
        .filter(|e| medsched_core::time::format_utc(e.start) == "2027-03-16T15:00:00Z")
        .map(|e| s.resource_id(e.resource).unwrap())
        .collect();
    assert_eq!(at_11, ["dr-a", "dr-b", "room-1"]);
}

#[test]
fn two_of_three_within_a_group() {
    let mut c = base();
    c.resources.push(resource("dr-c", NY));
    c.working_hours.push(hours(
        "dr-c",
        "2027-03-01T09:00",
        "10:00",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    ));
    let mut team = appt_type("team", 30, 30);
    team.requirements = vec![Requirement {
        count: 2,
        resources: vec![],
        tag: Some("provider".into()),
    }];
    c.appointment_types.push(team);
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-16T13:00:00Z",
        "2027-03-16T13:30:00Z",
    ));
    let s = Schedule::new(&c).unwrap();
    let slots = s.slots(&query("team", &[])).unwrap();
    let got: Vec<(String, usize)> = slots
        .assignments()
        .iter()
        .map(|a| (medsched_core::time::format_utc(a.start), a.groups[0].len()))
        .collect();
    // 09:00: dr-b + dr-c; 09:30: all three free; later: dr-a + dr-b.
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|(_, n)| *n == 2));
}

#[test]
fn notice_horizon_and_past() {
    let mut c = base();
    c.appointment_types[0].min_notice_min = 120;
    c.appointment_types[0].horizon_days = Some(14);
    let s = Schedule::new(&c).unwrap();
    let now = t("2027-03-16T12:00:00Z"); // 08:00 local
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T13:30:00Z"), now, None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["notice"]);
    let e = s
        .explain("visit", "dr-a", t("2027-03-15T13:30:00Z"), now, None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["in_past"]);
    let e = s
        .explain("visit", "dr-a", t("2027-03-31T13:30:00Z"), now, None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["horizon"]);
    let mut q = query("visit", &["dr-a"]);
    q.now = now;
    assert_eq!(
        starts(&s, &q, "dr-a").first().unwrap(),
        "2027-03-16T14:00:00Z"
    );
}

#[test]
fn per_day_and_per_week_limits_count_local_days() {
    let mut c = base();
    c.appointment_types[0].max_per_day = Some(1);
    c.appointment_types[0].max_per_week = Some(2);
    let mut a = appointment("a1", "dr-a", "2027-03-16T13:00:00Z", "2027-03-16T13:30:00Z");
    a.type_id = Some("visit".into());
    c.appointments.push(a);
    let s = Schedule::new(&c).unwrap();
    assert!(starts(&s, &query("visit", &["dr-a"]), "dr-a").is_empty());
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T15:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["daily_limit"]);
    let mut b = appointment("a2", "dr-a", "2027-03-17T13:00:00Z", "2027-03-17T13:30:00Z");
    b.type_id = Some("visit".into());
    c.appointments.push(b);
    let s = Schedule::new(&c).unwrap();
    let e = s
        .explain("visit", "dr-a", t("2027-03-18T15:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(codes(&e.reasons), ["weekly_limit"]);
    // Next week is free again.
    let e = s
        .explain("visit", "dr-a", t("2027-03-22T15:00:00Z"), t(NOW), None)
        .unwrap();
    assert!(e.bookable, "{:?}", e.reasons);
}

#[test]
fn time_off_is_named() {
    let mut c = base();
    c.time_off.push(TimeOff {
        id: "vacation-7".into(),
        resource: Some("dr-a".into()),
        start: t("2027-03-16T00:00:00Z"),
        end: t("2027-03-20T00:00:00Z"),
        kind: TimeOffKind::Vacation,
    });
    c.time_off.push(TimeOff {
        id: "all-hands".into(),
        resource: None,
        start: t("2027-03-16T15:00:00Z"),
        end: t("2027-03-16T16:00:00Z"),
        kind: TimeOffKind::Meeting,
    });
    let s = Schedule::new(&c).unwrap();
    let e = s
        .explain("visit", "dr-a", t("2027-03-16T15:00:00Z"), t(NOW), None)
        .unwrap();
    assert_eq!(
        e.reasons,
        [
            Reason::TimeOff {
                id: "vacation-7".into()
            },
            Reason::TimeOff {
                id: "all-hands".into()
            }
        ]
    );
    assert_eq!(starts(&s, &query("visit", &[]), "dr-b").len(), 4);
}

#[test]
fn patient_double_booking_blocks_or_warns() {
    let mut c = base();
    let mut a = appointment("a1", "dr-b", "2027-03-16T13:00:00Z", "2027-03-16T13:30:00Z");
    a.patient = Some("pat-1".into());
    c.appointments.push(a);
    let s = Schedule::new(&c).unwrap();
    let p = Proposal {
        type_id: "visit".into(),
        start: t("2027-03-16T13:00:00Z"),
        resources: vec!["dr-a".into()],
        patient: Some("pat-1".into()),
    };
    let r = s.check(&p, t(NOW)).unwrap();
    assert!(!r.bookable);
    assert_eq!(
        r.patient_conflicts,
        [Reason::PatientOverlap {
            appointment: "a1".into()
        }]
    );
    c.settings.patient_overlap = Severity::Warn;
    let s = Schedule::new(&c).unwrap();
    let r = s.check(&p, t(NOW)).unwrap();
    assert!(r.bookable);
    assert_eq!(codes(&r.warnings), ["patient_overlap"]);
}

#[test]
fn check_assigns_or_reports_every_candidate() {
    let mut c = base();
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-16T13:00:00Z",
        "2027-03-16T14:00:00Z",
    ));
    let s = Schedule::new(&c).unwrap();
    let any = Proposal {
        type_id: "visit".into(),
        start: t("2027-03-16T13:00:00Z"),
        resources: vec![],
        patient: None,
    };
    let r = s.check(&any, t(NOW)).unwrap();
    assert!(r.bookable);
    assert_eq!(r.assigned, ["dr-b"]);
    let chosen = Proposal {
        resources: vec!["dr-a".into()],
        ..any.clone()
    };
    let r = s.check(&chosen, t(NOW)).unwrap();
    assert!(!r.bookable);
    assert_eq!(r.conflicts[0].resource.as_deref(), Some("dr-a"));
    assert_eq!(
        r.conflicts[0].reasons,
        [Reason::Overlap {
            appointment: "a1".into()
        }]
    );
    // Procedure with only a doctor named does not fill the room group.
    let incomplete = Proposal {
        type_id: "procedure".into(),
        resources: vec!["dr-b".into()],
        ..any
    };
    let r = s.check(&incomplete, t(NOW)).unwrap();
    assert!(!r.bookable);
    assert_eq!(r.conflicts[0].resource, None);
    assert_eq!(codes(&r.conflicts[0].reasons), ["not_eligible"]);
}

#[test]
fn series_conflicts_are_reported_per_occurrence() {
    let mut c = base();
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-23T13:00:00Z",
        "2027-03-23T13:30:00Z",
    ));
    c.time_off.push(TimeOff {
        id: "conf".into(),
        resource: Some("dr-a".into()),
        start: t("2027-03-30T00:00:00Z"),
        end: t("2027-03-31T00:00:00Z"),
        kind: TimeOffKind::Meeting,
    });
    let s = Schedule::new(&c).unwrap();
    let p = SeriesProposal {
        type_id: "visit".into(),
        zone: NY.into(),
        // Weekly on Tuesdays 09:00 local, across the DST change on 03-14.
        dtstart: wall("2027-03-09T09:00"),
        rrule: "FREQ=WEEKLY;COUNT=4".into(),
        resources: vec!["dr-a".into()],
        patient: None,
    };
    let r = s.check_series(&p, t(NOW)).unwrap();
    let summary: Vec<(String, bool, Vec<&str>)> = r
        .occurrences
        .iter()
        .map(|o| {
            (
                medsched_core::time::format_utc(o.start.timestamp()),
                o.bookable,
                o.conflicts.iter().flat_map(|c| codes(&c.reasons)).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2027-03-09T14:00:00Z".to_owned(), true, vec![]),
            ("2027-03-16T13:00:00Z".to_owned(), true, vec![]),
            ("2027-03-23T13:00:00Z".to_owned(), false, vec!["overlap"]),
            ("2027-03-30T13:00:00Z".to_owned(), false, vec!["time_off"]),
        ]
    );
    assert!(!r.all_bookable());
    assert!(!r.truncated);
}

#[test]
fn overlapping_series_occurrences_conflict_with_each_other() {
    let s = Schedule::new(&base()).unwrap();
    let p = SeriesProposal {
        type_id: "visit".into(),
        zone: NY.into(),
        dtstart: wall("2027-03-16T09:00"),
        rrule: "FREQ=MINUTELY;INTERVAL=15;COUNT=2".into(),
        resources: vec!["dr-a".into()],
        patient: None,
    };
    let r = s.check_series(&p, t(NOW)).unwrap();
    assert!(r.occurrences.iter().all(|o| !o.bookable));
    assert!(r.occurrences[0]
        .conflicts
        .iter()
        .any(|c| codes(&c.reasons).contains(&"series_overlap")));
}

#[test]
fn bad_input_gets_typed_errors() {
    let mut c = base();
    c.resources[0].zone = "America/Nowhere".into();
    assert_eq!(Schedule::new(&c).unwrap_err().code(), "unknown_zone");

    let mut c = base();
    c.working_hours[0].rrule = "FREQ=WEEKLY;BYDAY=XX".into();
    let e = Schedule::new(&c).unwrap_err();
    assert_eq!(e.code(), "rrule_invalid");
    assert!(e.to_string().contains("working_hours[0]"), "{e}");

    let mut c = base();
    c.appointments.push(appointment(
        "a1",
        "dr-a",
        "2027-03-16T14:00:00Z",
        "2027-03-16T13:00:00Z",
    ));
    assert_eq!(Schedule::new(&c).unwrap_err().code(), "end_before_start");

    let mut c = base();
    c.appointments.push(appointment(
        "a1",
        "dr-zzz",
        "2027-03-16T13:00:00Z",
        "2027-03-16T14:00:00Z",
    ));
    let e = Schedule::new(&c).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        ("not_found", "resource `dr-zzz` not found".to_owned())
    );

    let mut c = base();
    c.resources.push(resource("dr-a", NY));
    assert_eq!(Schedule::new(&c).unwrap_err().code(), "duplicate_id");

    let mut c = base();
    c.appointment_types[0].step_min = 0;
    assert_eq!(Schedule::new(&c).unwrap_err().code(), "invalid_input");

    let s = Schedule::new(&base()).unwrap();
    let mut q = query("visit", &[]);
    q.to = t("2026-01-01T00:00:00Z");
    assert_eq!(s.slots(&q).unwrap_err().code(), "end_before_start");
    q.to = t("2030-01-01T00:00:00Z");
    assert_eq!(s.slots(&q).unwrap_err().code(), "window_too_large");
    assert_eq!(
        s.slots(&query("nope", &[])).unwrap_err().code(),
        "not_found"
    );

    let e =
        medsched_core::parse_clinic("{\"resources\": [", medsched_core::Format::Json).unwrap_err();
    assert_eq!(e.code(), "malformed_document");
    let e = medsched_core::parse_clinic("resources = 3", medsched_core::Format::Toml).unwrap_err();
    assert_eq!(e.code(), "malformed_document");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn clinic_loads_from_toml_and_json_alike() {
    let toml_text = r#"
[[resources]]
id = "dr-a"
zone = "America/New_York"
tags = ["provider"]

[[working_hours]]
resource = "dr-a"
dtstart = "2027-03-01T09:00:00"
end = "12:00:00"
rrule = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"

[[appointment_types]]
id = "visit"
duration_min = 30
step_min = 30
requirements = [{ tag = "provider" }]

[[appointments]]
id = "a1"
type = "visit"
resources = ["dr-a"]
start = "2027-03-16T09:00:00-04:00"
end = "2027-03-16T09:30:00-04:00"
reason = "confidential"
"#;
    let from_toml = medsched_core::parse_clinic(toml_text, medsched_core::Format::Toml).unwrap();
    let json = serde_json::to_string(&from_toml).unwrap();
    let from_json = medsched_core::parse_clinic(&json, medsched_core::Format::Json).unwrap();
    assert_eq!(from_toml, from_json);
    let s = Schedule::new(&from_json).unwrap();
    assert_eq!(starts(&s, &query("visit", &[]), "dr-a").len(), 5);
    assert!(!format!("{from_toml:?}").contains("confidential"));
}
