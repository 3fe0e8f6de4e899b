//! Snapshots of every serialized shape the core returns, so that a format
//! change is a decision, not an accident. `UPDATE_SNAPSHOTS=1 cargo test`
//! rewrites them; review the diff before committing.

use std::path::PathBuf;

use medsched_core::{load_schedule, Format, Proposal, Schedule, SeriesProposal};

use crate::common::{t, wall};

fn demo() -> Schedule {
    load_schedule(
        include_str!("../../fixtures/demo-clinic.json"),
        Format::Json,
    )
    .unwrap()
}

fn check_snapshot(name: &str, value: &impl serde::Serialize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let got = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        got, want,
        "snapshot {name} changed; run with UPDATE_SNAPSHOTS=1 and review"
    );
}

#[test]
fn explanation_shape() {
    let s = demo();
    let e = s
        .explain(
            "consult",
            "dr-ames",
            t("2027-03-09T15:30:00Z"),
            t("2027-03-01T00:00:00Z"),
            Some("p-101"),
        )
        .unwrap();
    assert!(!e.bookable);
    check_snapshot("explanation", &e);
}

#[test]
fn single_check_shape() {
    let s = demo();
    let p = Proposal {
        type_id: "consult".into(),
        start: t("2027-03-09T15:00:00Z"),
        resources: vec![],
        patient: Some("p-101".into()),
    };
    check_snapshot(
        "check_single",
        &s.check(&p, t("2027-03-01T00:00:00Z")).unwrap(),
    );
}

#[test]
fn series_check_shape() {
    let s = demo();
    let p = SeriesProposal {
        type_id: "consult".into(),
        zone: "America/New_York".into(),
        dtstart: wall("2027-03-09T10:00"),
        rrule: "FREQ=WEEKLY;COUNT=3".into(),
        resources: vec!["dr-ames".into(), "room-1".into()],
        patient: None,
    };
    check_snapshot(
        "check_series",
        &s.check_series(&p, t("2027-03-01T00:00:00Z")).unwrap(),
    );
}

#[test]
fn clinic_record_shape() {
    let c = medsched_core::parse_clinic(
        include_str!("../../fixtures/demo-clinic.json"),
        Format::Json,
    )
    .unwrap();
    check_snapshot("demo_clinic_records", &c);
}
