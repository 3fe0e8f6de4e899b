//! DST at clinic hours: gaps, folds, night shifts, 30-minute DST, half- and
//! quarter-hour zones, and a transition at local midnight.

use crate::common::*;
use medsched_core::records::Nonexistent;
use medsched_core::Schedule;

fn one(zone: &str, dtstart: &str, end: &str, rrule: &str, step: u32, duration: u32) -> Schedule {
    let c = clinic(
        vec![resource("r", zone)],
        vec![hours("r", dtstart, end, rrule)],
        vec![appt_type("visit", duration, step)],
    );
    Schedule::new(&c).unwrap()
}

fn span(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn new_york_spring_forward_night_block_is_five_hours() {
    let s = one(
        "America/New_York",
        "2027-03-01T00:00",
        "06:00",
        "FREQ=DAILY",
        60,
        60,
    );
    assert_eq!(
        open_utc(&s, "r", "2027-03-14T00:00:00Z", "2027-03-15T00:00:00Z"),
        [span("2027-03-14T05:00:00Z", "2027-03-14T10:00:00Z")]
    );
    assert_eq!(
        slots_local(
            &s,
            "visit",
            "r",
            "2027-03-14T04:00:00Z",
            "2027-03-14T12:00:00Z"
        ),
        [
            "2027-03-14T00:00:00-05:00",
            "2027-03-14T01:00:00-05:00",
            "2027-03-14T03:00:00-04:00",
            "2027-03-14T04:00:00-04:00",
            "2027-03-14T05:00:00-04:00",
        ]
    );
}

#[test]
fn new_york_fall_back_offers_both_one_oclocks() {
    let s = one(
        "America/New_York",
        "2027-11-01T00:00",
        "06:00",
        "FREQ=DAILY",
        60,
        60,
    );
    assert_eq!(
        open_utc(&s, "r", "2027-11-07T00:00:00Z", "2027-11-08T00:00:00Z"),
        [span("2027-11-07T04:00:00Z", "2027-11-07T11:00:00Z")]
    );
    assert_eq!(
        slots_local(
            &s,
            "visit",
            "r",
            "2027-11-07T00:00:00Z",
            "2027-11-07T12:00:00Z"
        ),
        [
            "2027-11-07T00:00:00-04:00",
            "2027-11-07T01:00:00-04:00",
            "2027-11-07T01:00:00-05:00",
            "2027-11-07T02:00:00-05:00",
            "2027-11-07T03:00:00-05:00",
            "2027-11-07T04:00:00-05:00",
            "2027-11-07T05:00:00-05:00",
        ]
    );
}

#[test]
fn new_york_weekday_clinic_keeps_local_hours_across_the_change() {
    let s = one(
        "America/New_York",
        "2027-03-01T08:00",
        "12:00",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        15,
        30,
    );
    // Friday before: EST; Monday after: EDT.
    assert_eq!(
        open_utc(&s, "r", "2027-03-12T00:00:00Z", "2027-03-16T00:00:00Z"),
        [
            span("2027-03-12T13:00:00Z", "2027-03-12T17:00:00Z"),
            span("2027-03-15T12:00:00Z", "2027-03-15T16:00:00Z"),
        ]
    );
    let monday = slots_local(
        &s,
        "visit",
        "r",
        "2027-03-15T00:00:00Z",
        "2027-03-16T00:00:00Z",
    );
    assert_eq!(monday.first().unwrap(), "2027-03-15T08:00:00-04:00");
    assert_eq!(monday.last().unwrap(), "2027-03-15T11:30:00-04:00");
    assert_eq!(monday.len(), 15);
}

#[test]
fn night_shifts_across_dst_are_seven_and_nine_hours() {
    // Saturday 22:00 to Sunday 06:00, in New York and Berlin.
    for (zone, spring, fall) in [
        (
            "America/New_York",
            ("2027-03-14T03:00:00Z", "2027-03-14T10:00:00Z"),
            ("2027-11-07T02:00:00Z", "2027-11-07T11:00:00Z"),
        ),
        (
            "Europe/Berlin",
            ("2027-03-27T21:00:00Z", "2027-03-28T04:00:00Z"),
            ("2027-10-30T20:00:00Z", "2027-10-31T05:00:00Z"),
        ),
    ] {
        let s = one(
            zone,
            "2027-01-02T22:00",
            "06:00",
            "FREQ=WEEKLY;BYDAY=SA",
            30,
            30,
        );
        let spring_open = open_utc(&s, "r", "2027-03-13T12:00:00Z", "2027-03-29T00:00:00Z");
        assert!(
            spring_open.contains(&span(spring.0, spring.1)),
            "{zone}: {spring_open:?}"
        );
        let fall_open = open_utc(&s, "r", "2027-10-30T00:00:00Z", "2027-11-08T00:00:00Z");
        assert!(
            fall_open.contains(&span(fall.0, fall.1)),
            "{zone}: {fall_open:?}"
        );
        let hours = |(a, b): &(String, String)| (t(b) - t(a)).num_minutes();
        assert_eq!(hours(&span(spring.0, spring.1)), 7 * 60);
        assert_eq!(hours(&span(fall.0, fall.1)), 9 * 60);
    }
}

#[test]
fn lord_howe_half_hour_gap() {
    // 2027-10-03 02:00 +10:30 jumps to 02:30 +11:00.
    let s = one(
        "Australia/Lord_Howe",
        "2027-09-01T00:00",
        "06:00",
        "FREQ=DAILY",
        15,
        30,
    );
    assert_eq!(
        open_utc(&s, "r", "2027-10-02T12:00:00Z", "2027-10-03T00:00:00Z"),
        [span("2027-10-02T13:30:00Z", "2027-10-02T19:00:00Z")]
    );
    let slots = slots_local(
        &s,
        "visit",
        "r",
        "2027-10-02T12:00:00Z",
        "2027-10-03T00:00:00Z",
    );
    assert_eq!(slots.len(), 21, "{slots:?}");
    assert!(slots.contains(&"2027-10-03T01:45:00+10:30".to_owned()));
    assert!(slots.contains(&"2027-10-03T02:30:00+11:00".to_owned()));
    assert!(!slots
        .iter()
        .any(|x| x.starts_with("2027-10-03T02:00") || x.starts_with("2027-10-03T02:15")));
}

#[test]
fn lord_howe_block_start_in_gap_shifts_or_skips() {
    let mut c = clinic(
        vec![resource("r", "Australia/Lord_Howe")],
        vec![hours("r", "2027-09-01T02:15", "04:00", "FREQ=DAILY")],
        vec![appt_type("visit", 30, 15)],
    );
    let s = Schedule::new(&c).unwrap();
    // 02:15 does not exist on 2027-10-03: read with +10:30 it is 02:45 +11:00.
    assert_eq!(
        open_utc(&s, "r", "2027-10-02T12:00:00Z", "2027-10-03T00:00:00Z"),
        [span("2027-10-02T15:45:00Z", "2027-10-02T17:00:00Z")]
    );
    c.working_hours[0].nonexistent = Nonexistent::Skip;
    let s = Schedule::new(&c).unwrap();
    assert_eq!(
        open_utc(&s, "r", "2027-10-02T12:00:00Z", "2027-10-03T00:00:00Z"),
        []
    );
}

#[test]
fn lord_howe_half_hour_fold_lengthens_the_night() {
    // 2027-04-04 02:00 +11:00 goes back to 01:30 +10:30.
    let s = one(
        "Australia/Lord_Howe",
        "2027-03-01T00:00",
        "06:00",
        "FREQ=DAILY",
        30,
        30,
    );
    assert_eq!(
        open_utc(&s, "r", "2027-04-03T12:00:00Z", "2027-04-04T00:00:00Z"),
        [span("2027-04-03T13:00:00Z", "2027-04-03T19:30:00Z")]
    );
    let slots = slots_local(
        &s,
        "visit",
        "r",
        "2027-04-03T12:00:00Z",
        "2027-04-04T00:00:00Z",
    );
    // 01:30 and 01:45... on a 30-minute grid: 01:30 occurs twice.
    assert_eq!(
        slots
            .iter()
            .filter(|x| x.starts_with("2027-04-04T01:30"))
            .count(),
        2,
        "{slots:?}"
    );
    assert_eq!(slots.len(), 13);
}

#[test]
fn kolkata_grid_follows_the_local_clock() {
    let s = one(
        "Asia/Kolkata",
        "2027-03-01T09:00",
        "12:00",
        "FREQ=DAILY",
        60,
        60,
    );
    let q = medsched_core::SlotQuery {
        type_id: "visit".into(),
        from: t("2027-03-02T00:00:00Z"),
        to: t("2027-03-03T00:00:00Z"),
        now: t("2027-03-01T00:00:00Z"),
        resources: vec![],
    };
    let got: Vec<String> = s
        .slots(&q)
        .unwrap()
        .entries
        .iter()
        .map(|e| medsched_core::time::format_utc(e.start))
        .collect();
    // 09:00, 10:00, 11:00 IST, not 04:00Z..; a UTC grid would miss them.
    assert_eq!(
        got,
        [
            "2027-03-02T03:30:00Z",
            "2027-03-02T04:30:00Z",
            "2027-03-02T05:30:00Z"
        ]
    );
}

#[test]
fn kathmandu_grid_follows_the_local_clock() {
    let s = one(
        "Asia/Kathmandu",
        "2027-03-01T09:00",
        "12:00",
        "FREQ=DAILY",
        60,
        60,
    );
    assert_eq!(
        slots_local(
            &s,
            "visit",
            "r",
            "2027-03-02T00:00:00Z",
            "2027-03-03T00:00:00Z"
        ),
        [
            "2027-03-02T09:00:00+05:45",
            "2027-03-02T10:00:00+05:45",
            "2027-03-02T11:00:00+05:45"
        ]
    );
    let e = s
        .explain(
            "visit",
            "r",
            t("2027-03-02T03:30:00Z"),
            t("2027-03-01T00:00:00Z"),
            None,
        )
        .unwrap();
    assert_eq!(e.reasons.first().map(|r| r.code()), Some("not_on_grid"));
}

#[test]
fn santiago_midnight_gap_shifts_the_block_start() {
    // 2027-09-05 00:00 -04:00 jumps to 01:00 -03:00: local midnight does not exist.
    let mut c = clinic(
        vec![resource("r", "America/Santiago")],
        vec![hours("r", "2027-08-01T00:00", "08:00", "FREQ=DAILY")],
        vec![appt_type("visit", 60, 60)],
    );
    let s = Schedule::new(&c).unwrap();
    assert_eq!(
        open_utc(&s, "r", "2027-09-05T00:00:00Z", "2027-09-05T23:00:00Z"),
        [span("2027-09-05T04:00:00Z", "2027-09-05T11:00:00Z")]
    );
    // The grid is the local clock: the day's first slot is 01:00 -03:00.
    let slots = slots_local(
        &s,
        "visit",
        "r",
        "2027-09-05T03:00:00Z",
        "2027-09-05T12:00:00Z",
    );
    assert_eq!(slots.first().unwrap(), "2027-09-05T01:00:00-03:00");
    assert_eq!(slots.len(), 7);
    c.working_hours[0].nonexistent = Nonexistent::Skip;
    let s = Schedule::new(&c).unwrap();
    assert_eq!(
        open_utc(&s, "r", "2027-09-05T00:00:00Z", "2027-09-05T23:00:00Z"),
        []
    );
}

#[test]
fn santiago_shift_ending_at_the_midnight_fold() {
    // 2027-04-04 00:00 -03:00 goes back to 2027-04-03 23:00 -04:00.
    let s = one(
        "America/Santiago",
        "2027-03-01T20:00",
        "00:00",
        "FREQ=DAILY",
        60,
        60,
    );
    let open = open_utc(&s, "r", "2027-04-03T12:00:00Z", "2027-04-04T12:00:00Z");
    // Saturday 20:00 -03:00 (23:00Z) to Sunday 00:00 -04:00 (04:00Z): five real hours.
    assert_eq!(open, [span("2027-04-03T23:00:00Z", "2027-04-04T04:00:00Z")]);
}

#[test]
fn a_block_ending_at_its_start_time_is_a_whole_day_of_local_clock() {
    // 08:00 to 08:00 the next day: 24 hours, 23 across the spring gap.
    let s = one(
        "America/New_York",
        "2027-03-13T08:00",
        "08:00",
        "FREQ=DAILY;COUNT=2",
        60,
        60,
    );
    assert_eq!(
        open_utc(&s, "r", "2027-03-13T00:00:00Z", "2027-03-16T00:00:00Z"),
        [span("2027-03-13T13:00:00Z", "2027-03-15T12:00:00Z")]
    );
}
