//! The 39 examples of RFC 5545 section 3.8.5.3 ("Recurrence Rule"), each
//! checked against the recurrence expander.
//!
//! All examples use `DTSTART;TZID=America/New_York`. Expected occurrences are
//! New York wall times carrying the RFC's own EDT/EST annotation, such as
//! `1997-09-02T09:00 EDT`; [`check`] compares the wall time and the UTC offset
//! (EDT is -04:00, EST is -05:00). For the rules that run forever, the window
//! holds exactly the prefix the RFC prints. Where the RFC offers two rules for
//! one example ("... or ..."), both are checked against the same list.
//!
//! Each test is named after the example's heading in the RFC.

// Test-only code: lets the helpers below panic like the tests do (clippy's
// `allow-panic-in-tests`).
#![cfg(test)]

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use medsched_core::recurrence::Recurrence;
use medsched_core::time::format_in_zone;

/// The zone of every example ("All examples assume the Eastern United States
/// time zone").
const NEW_YORK: Tz = chrono_tz::America::New_York;

/// The instant of a New York wall time written `YYYY-MM-DDTHH:MM`.
fn instant(local: &str) -> i64 {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M")
        .unwrap_or_else(|e| panic!("bad wall time `{local}`: {e}"));
    NEW_YORK
        .from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| panic!("`{local}` does not exist in New York"))
        .timestamp()
}

/// `1997-09-02T09:00:00-04:00` as `1997-09-02T09:00 EDT`, the form the
/// expectations are written in.
fn wall_with_label(formatted: &str) -> String {
    let t = DateTime::parse_from_rfc3339(formatted)
        .unwrap_or_else(|e| panic!("`{formatted}` is not RFC 3339: {e}"));
    let label = match t.offset().local_minus_utc() {
        -14_400 => "EDT".to_owned(),
        -18_000 => "EST".to_owned(),
        _ => t.format("%:z").to_string(),
    };
    let wall = if t.second() == 0 {
        t.format("%Y-%m-%dT%H:%M")
    } else {
        t.format("%Y-%m-%dT%H:%M:%S")
    };
    format!("{wall} {label}")
}

/// Expands the iCalendar lines (joined with CRLF; a line starting with a
/// space continues the previous one, as the RFC folds them) in the window
/// `[from, to)` of New York wall times and compares the occurrences with
/// `expected`.
fn check(ical: &[&str], (from, to): (&str, &str), expected: &[&str]) {
    let text = ical.join("\r\n");
    let set = Recurrence::parse_ical(&text, NEW_YORK)
        .unwrap_or_else(|e| panic!("cannot parse:\n{text}\n{e}"));
    assert_eq!(set.zone(), NEW_YORK);
    let expansion = set
        .expand(instant(from), instant(to), 10_000)
        .unwrap_or_else(|e| panic!("cannot expand:\n{text}\n{e}"));
    assert!(!expansion.truncated, "expansion truncated:\n{text}");
    let got: Vec<String> = expansion
        .instants
        .iter()
        .map(|&t| wall_with_label(&format_in_zone(t, set.zone())))
        .collect();
    assert_eq!(got, expected, "\n{text}\nin [{from}, {to})");
}

/// Daily for 10 occurrences.
#[test]
fn daily_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=DAILY;COUNT=10",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-03T09:00 EDT",
            "1997-09-04T09:00 EDT",
            "1997-09-05T09:00 EDT",
            "1997-09-06T09:00 EDT",
            "1997-09-07T09:00 EDT",
            "1997-09-08T09:00 EDT",
            "1997-09-09T09:00 EDT",
            "1997-09-10T09:00 EDT",
            "1997-09-11T09:00 EDT",
        ],
    );
}

/// Daily until December 24, 1997.
#[test]
fn daily_until_december_24_1997() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=DAILY;UNTIL=19971224T000000Z",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-03T09:00 EDT",
            "1997-09-04T09:00 EDT",
            "1997-09-05T09:00 EDT",
            "1997-09-06T09:00 EDT",
            "1997-09-07T09:00 EDT",
            "1997-09-08T09:00 EDT",
            "1997-09-09T09:00 EDT",
            "1997-09-10T09:00 EDT",
            "1997-09-11T09:00 EDT",
            "1997-09-12T09:00 EDT",
            "1997-09-13T09:00 EDT",
            "1997-09-14T09:00 EDT",
            "1997-09-15T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-17T09:00 EDT",
            "1997-09-18T09:00 EDT",
            "1997-09-19T09:00 EDT",
            "1997-09-20T09:00 EDT",
            "1997-09-21T09:00 EDT",
            "1997-09-22T09:00 EDT",
            "1997-09-23T09:00 EDT",
            "1997-09-24T09:00 EDT",
            "1997-09-25T09:00 EDT",
            "1997-09-26T09:00 EDT",
            "1997-09-27T09:00 EDT",
            "1997-09-28T09:00 EDT",
            "1997-09-29T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-01T09:00 EDT",
            "1997-10-02T09:00 EDT",
            "1997-10-03T09:00 EDT",
            "1997-10-04T09:00 EDT",
            "1997-10-05T09:00 EDT",
            "1997-10-06T09:00 EDT",
            "1997-10-07T09:00 EDT",
            "1997-10-08T09:00 EDT",
            "1997-10-09T09:00 EDT",
            "1997-10-10T09:00 EDT",
            "1997-10-11T09:00 EDT",
            "1997-10-12T09:00 EDT",
            "1997-10-13T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-15T09:00 EDT",
            "1997-10-16T09:00 EDT",
            "1997-10-17T09:00 EDT",
            "1997-10-18T09:00 EDT",
            "1997-10-19T09:00 EDT",
            "1997-10-20T09:00 EDT",
            "1997-10-21T09:00 EDT",
            "1997-10-22T09:00 EDT",
            "1997-10-23T09:00 EDT",
            "1997-10-24T09:00 EDT",
            "1997-10-25T09:00 EDT",
            "1997-10-26T09:00 EST",
            "1997-10-27T09:00 EST",
            "1997-10-28T09:00 EST",
            "1997-10-29T09:00 EST",
            "1997-10-30T09:00 EST",
            "1997-10-31T09:00 EST",
            "1997-11-01T09:00 EST",
            "1997-11-02T09:00 EST",
            "1997-11-03T09:00 EST",
            "1997-11-04T09:00 EST",
            "1997-11-05T09:00 EST",
            "1997-11-06T09:00 EST",
            "1997-11-07T09:00 EST",
            "1997-11-08T09:00 EST",
            "1997-11-09T09:00 EST",
            "1997-11-10T09:00 EST",
            "1997-11-11T09:00 EST",
            "1997-11-12T09:00 EST",
            "1997-11-13T09:00 EST",
            "1997-11-14T09:00 EST",
            "1997-11-15T09:00 EST",
            "1997-11-16T09:00 EST",
            "1997-11-17T09:00 EST",
            "1997-11-18T09:00 EST",
            "1997-11-19T09:00 EST",
            "1997-11-20T09:00 EST",
            "1997-11-21T09:00 EST",
            "1997-11-22T09:00 EST",
            "1997-11-23T09:00 EST",
            "1997-11-24T09:00 EST",
            "1997-11-25T09:00 EST",
            "1997-11-26T09:00 EST",
            "1997-11-27T09:00 EST",
            "1997-11-28T09:00 EST",
            "1997-11-29T09:00 EST",
            "1997-11-30T09:00 EST",
            "1997-12-01T09:00 EST",
            "1997-12-02T09:00 EST",
            "1997-12-03T09:00 EST",
            "1997-12-04T09:00 EST",
            "1997-12-05T09:00 EST",
            "1997-12-06T09:00 EST",
            "1997-12-07T09:00 EST",
            "1997-12-08T09:00 EST",
            "1997-12-09T09:00 EST",
            "1997-12-10T09:00 EST",
            "1997-12-11T09:00 EST",
            "1997-12-12T09:00 EST",
            "1997-12-13T09:00 EST",
            "1997-12-14T09:00 EST",
            "1997-12-15T09:00 EST",
            "1997-12-16T09:00 EST",
            "1997-12-17T09:00 EST",
            "1997-12-18T09:00 EST",
            "1997-12-19T09:00 EST",
            "1997-12-20T09:00 EST",
            "1997-12-21T09:00 EST",
            "1997-12-22T09:00 EST",
            "1997-12-23T09:00 EST",
        ],
    );
}

/// Every other day - forever. The RFC prints September 2 to December 3,
/// 1997, with elisions ("September 2,4,6,8...24,26,28,30; ...
/// December 1,3,..."); the window holds exactly that span.
#[test]
fn every_other_day_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=DAILY;INTERVAL=2",
        ],
        ("1997-09-01T00:00", "1997-12-04T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-04T09:00 EDT",
            "1997-09-06T09:00 EDT",
            "1997-09-08T09:00 EDT",
            "1997-09-10T09:00 EDT",
            "1997-09-12T09:00 EDT",
            "1997-09-14T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-18T09:00 EDT",
            "1997-09-20T09:00 EDT",
            "1997-09-22T09:00 EDT",
            "1997-09-24T09:00 EDT",
            "1997-09-26T09:00 EDT",
            "1997-09-28T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-02T09:00 EDT",
            "1997-10-04T09:00 EDT",
            "1997-10-06T09:00 EDT",
            "1997-10-08T09:00 EDT",
            "1997-10-10T09:00 EDT",
            "1997-10-12T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-16T09:00 EDT",
            "1997-10-18T09:00 EDT",
            "1997-10-20T09:00 EDT",
            "1997-10-22T09:00 EDT",
            "1997-10-24T09:00 EDT",
            "1997-10-26T09:00 EST",
            "1997-10-28T09:00 EST",
            "1997-10-30T09:00 EST",
            "1997-11-01T09:00 EST",
            "1997-11-03T09:00 EST",
            "1997-11-05T09:00 EST",
            "1997-11-07T09:00 EST",
            "1997-11-09T09:00 EST",
            "1997-11-11T09:00 EST",
            "1997-11-13T09:00 EST",
            "1997-11-15T09:00 EST",
            "1997-11-17T09:00 EST",
            "1997-11-19T09:00 EST",
            "1997-11-21T09:00 EST",
            "1997-11-23T09:00 EST",
            "1997-11-25T09:00 EST",
            "1997-11-27T09:00 EST",
            "1997-11-29T09:00 EST",
            "1997-12-01T09:00 EST",
            "1997-12-03T09:00 EST",
        ],
    );
}

/// Every 10 days, 5 occurrences.
#[test]
fn every_10_days_5_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=DAILY;INTERVAL=10;COUNT=5",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-12T09:00 EDT",
            "1997-09-22T09:00 EDT",
            "1997-10-02T09:00 EDT",
            "1997-10-12T09:00 EDT",
        ],
    );
}

/// Every day in January, for 3 years (both rules the RFC gives).
#[test]
fn every_day_in_january_for_3_years() {
    let expected = &[
        "1998-01-01T09:00 EST",
        "1998-01-02T09:00 EST",
        "1998-01-03T09:00 EST",
        "1998-01-04T09:00 EST",
        "1998-01-05T09:00 EST",
        "1998-01-06T09:00 EST",
        "1998-01-07T09:00 EST",
        "1998-01-08T09:00 EST",
        "1998-01-09T09:00 EST",
        "1998-01-10T09:00 EST",
        "1998-01-11T09:00 EST",
        "1998-01-12T09:00 EST",
        "1998-01-13T09:00 EST",
        "1998-01-14T09:00 EST",
        "1998-01-15T09:00 EST",
        "1998-01-16T09:00 EST",
        "1998-01-17T09:00 EST",
        "1998-01-18T09:00 EST",
        "1998-01-19T09:00 EST",
        "1998-01-20T09:00 EST",
        "1998-01-21T09:00 EST",
        "1998-01-22T09:00 EST",
        "1998-01-23T09:00 EST",
        "1998-01-24T09:00 EST",
        "1998-01-25T09:00 EST",
        "1998-01-26T09:00 EST",
        "1998-01-27T09:00 EST",
        "1998-01-28T09:00 EST",
        "1998-01-29T09:00 EST",
        "1998-01-30T09:00 EST",
        "1998-01-31T09:00 EST",
        "1999-01-01T09:00 EST",
        "1999-01-02T09:00 EST",
        "1999-01-03T09:00 EST",
        "1999-01-04T09:00 EST",
        "1999-01-05T09:00 EST",
        "1999-01-06T09:00 EST",
        "1999-01-07T09:00 EST",
        "1999-01-08T09:00 EST",
        "1999-01-09T09:00 EST",
        "1999-01-10T09:00 EST",
        "1999-01-11T09:00 EST",
        "1999-01-12T09:00 EST",
        "1999-01-13T09:00 EST",
        "1999-01-14T09:00 EST",
        "1999-01-15T09:00 EST",
        "1999-01-16T09:00 EST",
        "1999-01-17T09:00 EST",
        "1999-01-18T09:00 EST",
        "1999-01-19T09:00 EST",
        "1999-01-20T09:00 EST",
        "1999-01-21T09:00 EST",
        "1999-01-22T09:00 EST",
        "1999-01-23T09:00 EST",
        "1999-01-24T09:00 EST",
        "1999-01-25T09:00 EST",
        "1999-01-26T09:00 EST",
        "1999-01-27T09:00 EST",
        "1999-01-28T09:00 EST",
        "1999-01-29T09:00 EST",
        "1999-01-30T09:00 EST",
        "1999-01-31T09:00 EST",
        "2000-01-01T09:00 EST",
        "2000-01-02T09:00 EST",
        "2000-01-03T09:00 EST",
        "2000-01-04T09:00 EST",
        "2000-01-05T09:00 EST",
        "2000-01-06T09:00 EST",
        "2000-01-07T09:00 EST",
        "2000-01-08T09:00 EST",
        "2000-01-09T09:00 EST",
        "2000-01-10T09:00 EST",
        "2000-01-11T09:00 EST",
        "2000-01-12T09:00 EST",
        "2000-01-13T09:00 EST",
        "2000-01-14T09:00 EST",
        "2000-01-15T09:00 EST",
        "2000-01-16T09:00 EST",
        "2000-01-17T09:00 EST",
        "2000-01-18T09:00 EST",
        "2000-01-19T09:00 EST",
        "2000-01-20T09:00 EST",
        "2000-01-21T09:00 EST",
        "2000-01-22T09:00 EST",
        "2000-01-23T09:00 EST",
        "2000-01-24T09:00 EST",
        "2000-01-25T09:00 EST",
        "2000-01-26T09:00 EST",
        "2000-01-27T09:00 EST",
        "2000-01-28T09:00 EST",
        "2000-01-29T09:00 EST",
        "2000-01-30T09:00 EST",
        "2000-01-31T09:00 EST",
    ];
    check(
        &[
            "DTSTART;TZID=America/New_York:19980101T090000",
            "RRULE:FREQ=YEARLY;UNTIL=20000131T140000Z;",
            " BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
        ],
        ("1997-12-01T00:00", "2001-01-01T00:00"),
        expected,
    );
    check(
        &[
            "DTSTART;TZID=America/New_York:19980101T090000",
            "RRULE:FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
        ],
        ("1997-12-01T00:00", "2001-01-01T00:00"),
        expected,
    );
}

/// Weekly for 10 occurrences.
#[test]
fn weekly_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;COUNT=10",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-09T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-23T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-07T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-21T09:00 EDT",
            "1997-10-28T09:00 EST",
            "1997-11-04T09:00 EST",
        ],
    );
}

/// Weekly until December 24, 1997.
#[test]
fn weekly_until_december_24_1997() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;UNTIL=19971224T000000Z",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-09T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-23T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-07T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-21T09:00 EDT",
            "1997-10-28T09:00 EST",
            "1997-11-04T09:00 EST",
            "1997-11-11T09:00 EST",
            "1997-11-18T09:00 EST",
            "1997-11-25T09:00 EST",
            "1997-12-02T09:00 EST",
            "1997-12-09T09:00 EST",
            "1997-12-16T09:00 EST",
            "1997-12-23T09:00 EST",
        ],
    );
}

/// Every other week - forever. The RFC lists up to February 17, 1998.
#[test]
fn every_other_week_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU",
        ],
        ("1997-09-01T00:00", "1998-02-18T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-28T09:00 EST",
            "1997-11-11T09:00 EST",
            "1997-11-25T09:00 EST",
            "1997-12-09T09:00 EST",
            "1997-12-23T09:00 EST",
            "1998-01-06T09:00 EST",
            "1998-01-20T09:00 EST",
            "1998-02-03T09:00 EST",
            "1998-02-17T09:00 EST",
        ],
    );
}

/// Weekly on Tuesday and Thursday for five weeks (both rules the RFC
/// gives).
#[test]
fn weekly_on_tuesday_and_thursday_for_five_weeks() {
    let expected = &[
        "1997-09-02T09:00 EDT",
        "1997-09-04T09:00 EDT",
        "1997-09-09T09:00 EDT",
        "1997-09-11T09:00 EDT",
        "1997-09-16T09:00 EDT",
        "1997-09-18T09:00 EDT",
        "1997-09-23T09:00 EDT",
        "1997-09-25T09:00 EDT",
        "1997-09-30T09:00 EDT",
        "1997-10-02T09:00 EDT",
    ];
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        expected,
    );
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        expected,
    );
}

/// Every other week on Monday, Wednesday, and Friday until December 24,
/// 1997, starting on Monday, September 1, 1997.
#[test]
fn every_other_week_on_monday_wednesday_and_friday_until_december_24_1997() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970901T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;",
            " BYDAY=MO,WE,FR",
        ],
        ("1997-08-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-01T09:00 EDT",
            "1997-09-03T09:00 EDT",
            "1997-09-05T09:00 EDT",
            "1997-09-15T09:00 EDT",
            "1997-09-17T09:00 EDT",
            "1997-09-19T09:00 EDT",
            "1997-09-29T09:00 EDT",
            "1997-10-01T09:00 EDT",
            "1997-10-03T09:00 EDT",
            "1997-10-13T09:00 EDT",
            "1997-10-15T09:00 EDT",
            "1997-10-17T09:00 EDT",
            "1997-10-27T09:00 EST",
            "1997-10-29T09:00 EST",
            "1997-10-31T09:00 EST",
            "1997-11-10T09:00 EST",
            "1997-11-12T09:00 EST",
            "1997-11-14T09:00 EST",
            "1997-11-24T09:00 EST",
            "1997-11-26T09:00 EST",
            "1997-11-28T09:00 EST",
            "1997-12-08T09:00 EST",
            "1997-12-10T09:00 EST",
            "1997-12-12T09:00 EST",
            "1997-12-22T09:00 EST",
        ],
    );
}

/// Every other week on Tuesday and Thursday, for 8 occurrences.
#[test]
fn every_other_week_on_tuesday_and_thursday_for_8_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-04T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-18T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-10-02T09:00 EDT",
            "1997-10-14T09:00 EDT",
            "1997-10-16T09:00 EDT",
        ],
    );
}

/// Monthly on the first Friday for 10 occurrences.
#[test]
fn monthly_on_the_first_friday_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970905T090000",
            "RRULE:FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        ],
        ("1997-09-01T00:00", "1999-09-01T00:00"),
        &[
            "1997-09-05T09:00 EDT",
            "1997-10-03T09:00 EDT",
            "1997-11-07T09:00 EST",
            "1997-12-05T09:00 EST",
            "1998-01-02T09:00 EST",
            "1998-02-06T09:00 EST",
            "1998-03-06T09:00 EST",
            "1998-04-03T09:00 EST",
            "1998-05-01T09:00 EDT",
            "1998-06-05T09:00 EDT",
        ],
    );
}

/// Monthly on the first Friday until December 24, 1997.
#[test]
fn monthly_on_the_first_friday_until_december_24_1997() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970905T090000",
            "RRULE:FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-05T09:00 EDT",
            "1997-10-03T09:00 EDT",
            "1997-11-07T09:00 EST",
            "1997-12-05T09:00 EST",
        ],
    );
}

/// Every other month on the first and last Sunday of the month for 10
/// occurrences.
#[test]
fn every_other_month_on_the_first_and_last_sunday_of_the_month_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970907T090000",
            "RRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        ],
        ("1997-09-01T00:00", "1999-09-01T00:00"),
        &[
            "1997-09-07T09:00 EDT",
            "1997-09-28T09:00 EDT",
            "1997-11-02T09:00 EST",
            "1997-11-30T09:00 EST",
            "1998-01-04T09:00 EST",
            "1998-01-25T09:00 EST",
            "1998-03-01T09:00 EST",
            "1998-03-29T09:00 EST",
            "1998-05-03T09:00 EDT",
            "1998-05-31T09:00 EDT",
        ],
    );
}

/// Monthly on the second-to-last Monday of the month for 6 months.
#[test]
fn monthly_on_the_second_to_last_monday_of_the_month_for_6_months() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970922T090000",
            "RRULE:FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-22T09:00 EDT",
            "1997-10-20T09:00 EDT",
            "1997-11-17T09:00 EST",
            "1997-12-22T09:00 EST",
            "1998-01-19T09:00 EST",
            "1998-02-16T09:00 EST",
        ],
    );
}

/// Monthly on the third-to-the-last day of the month, forever. The RFC
/// lists up to February 26, 1998.
#[test]
fn monthly_on_the_third_to_the_last_day_of_the_month_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970928T090000",
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=-3",
        ],
        ("1997-09-01T00:00", "1998-03-01T00:00"),
        &[
            "1997-09-28T09:00 EDT",
            "1997-10-29T09:00 EST",
            "1997-11-28T09:00 EST",
            "1997-12-29T09:00 EST",
            "1998-01-29T09:00 EST",
            "1998-02-26T09:00 EST",
        ],
    );
}

/// Monthly on the 2nd and 15th of the month for 10 occurrences.
#[test]
fn monthly_on_the_2nd_and_15th_of_the_month_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-15T09:00 EDT",
            "1997-10-02T09:00 EDT",
            "1997-10-15T09:00 EDT",
            "1997-11-02T09:00 EST",
            "1997-11-15T09:00 EST",
            "1997-12-02T09:00 EST",
            "1997-12-15T09:00 EST",
            "1998-01-02T09:00 EST",
            "1998-01-15T09:00 EST",
        ],
    );
}

/// Monthly on the first and last day of the month for 10 occurrences.
#[test]
fn monthly_on_the_first_and_last_day_of_the_month_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970930T090000",
            "RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-30T09:00 EDT",
            "1997-10-01T09:00 EDT",
            "1997-10-31T09:00 EST",
            "1997-11-01T09:00 EST",
            "1997-11-30T09:00 EST",
            "1997-12-01T09:00 EST",
            "1997-12-31T09:00 EST",
            "1998-01-01T09:00 EST",
            "1998-01-31T09:00 EST",
            "1998-02-01T09:00 EST",
        ],
    );
}

/// Every 18 months on the 10th thru 15th of the month for 10
/// occurrences.
#[test]
fn every_18_months_on_the_10th_thru_15th_of_the_month_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970910T090000",
            "RRULE:FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,",
            " 13,14,15",
        ],
        ("1997-09-01T00:00", "2002-01-01T00:00"),
        &[
            "1997-09-10T09:00 EDT",
            "1997-09-11T09:00 EDT",
            "1997-09-12T09:00 EDT",
            "1997-09-13T09:00 EDT",
            "1997-09-14T09:00 EDT",
            "1997-09-15T09:00 EDT",
            "1999-03-10T09:00 EST",
            "1999-03-11T09:00 EST",
            "1999-03-12T09:00 EST",
            "1999-03-13T09:00 EST",
        ],
    );
}

/// Every Tuesday, every other month. The RFC lists up to March 31, 1998.
#[test]
fn every_tuesday_every_other_month() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
        ],
        ("1997-09-01T00:00", "1998-04-01T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-09T09:00 EDT",
            "1997-09-16T09:00 EDT",
            "1997-09-23T09:00 EDT",
            "1997-09-30T09:00 EDT",
            "1997-11-04T09:00 EST",
            "1997-11-11T09:00 EST",
            "1997-11-18T09:00 EST",
            "1997-11-25T09:00 EST",
            "1998-01-06T09:00 EST",
            "1998-01-13T09:00 EST",
            "1998-01-20T09:00 EST",
            "1998-01-27T09:00 EST",
            "1998-03-03T09:00 EST",
            "1998-03-10T09:00 EST",
            "1998-03-17T09:00 EST",
            "1998-03-24T09:00 EST",
            "1998-03-31T09:00 EST",
        ],
    );
}

/// Yearly in June and July for 10 occurrences.
#[test]
fn yearly_in_june_and_july_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970610T090000",
            "RRULE:FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        ],
        ("1997-06-01T00:00", "2004-01-01T00:00"),
        &[
            "1997-06-10T09:00 EDT",
            "1997-07-10T09:00 EDT",
            "1998-06-10T09:00 EDT",
            "1998-07-10T09:00 EDT",
            "1999-06-10T09:00 EDT",
            "1999-07-10T09:00 EDT",
            "2000-06-10T09:00 EDT",
            "2000-07-10T09:00 EDT",
            "2001-06-10T09:00 EDT",
            "2001-07-10T09:00 EDT",
        ],
    );
}

/// Every other year on January, February, and March for 10
/// occurrences.
#[test]
fn every_other_year_on_january_february_and_march_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970310T090000",
            "RRULE:FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
        ],
        ("1997-03-01T00:00", "2006-01-01T00:00"),
        &[
            "1997-03-10T09:00 EST",
            "1999-01-10T09:00 EST",
            "1999-02-10T09:00 EST",
            "1999-03-10T09:00 EST",
            "2001-01-10T09:00 EST",
            "2001-02-10T09:00 EST",
            "2001-03-10T09:00 EST",
            "2003-01-10T09:00 EST",
            "2003-02-10T09:00 EST",
            "2003-03-10T09:00 EST",
        ],
    );
}

/// Every third year on the 1st, 100th, and 200th day for 10
/// occurrences.
#[test]
fn every_third_year_on_the_1st_100th_and_200th_day_for_10_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970101T090000",
            "RRULE:FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        ],
        ("1996-12-01T00:00", "2010-01-01T00:00"),
        &[
            "1997-01-01T09:00 EST",
            "1997-04-10T09:00 EDT",
            "1997-07-19T09:00 EDT",
            "2000-01-01T09:00 EST",
            "2000-04-09T09:00 EDT",
            "2000-07-18T09:00 EDT",
            "2003-01-01T09:00 EST",
            "2003-04-10T09:00 EDT",
            "2003-07-19T09:00 EDT",
            "2006-01-01T09:00 EST",
        ],
    );
}

/// Every 20th Monday of the year, forever. The RFC lists 1997 to 1999.
#[test]
fn every_20th_monday_of_the_year_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970519T090000",
            "RRULE:FREQ=YEARLY;BYDAY=20MO",
        ],
        ("1997-01-01T00:00", "2000-01-01T00:00"),
        &[
            "1997-05-19T09:00 EDT",
            "1998-05-18T09:00 EDT",
            "1999-05-17T09:00 EDT",
        ],
    );
}

/// Monday of week number 20 (where the default start of the week is
/// Monday), forever. The RFC lists 1997 to 1999.
#[test]
fn monday_of_week_number_20_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970512T090000",
            "RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        ],
        ("1997-01-01T00:00", "2000-01-01T00:00"),
        &[
            "1997-05-12T09:00 EDT",
            "1998-05-11T09:00 EDT",
            "1999-05-17T09:00 EDT",
        ],
    );
}

/// Every Thursday in March, forever. The RFC lists 1997 to 1999.
#[test]
fn every_thursday_in_march_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970313T090000",
            "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        ],
        ("1997-01-01T00:00", "2000-01-01T00:00"),
        &[
            "1997-03-13T09:00 EST",
            "1997-03-20T09:00 EST",
            "1997-03-27T09:00 EST",
            "1998-03-05T09:00 EST",
            "1998-03-12T09:00 EST",
            "1998-03-19T09:00 EST",
            "1998-03-26T09:00 EST",
            "1999-03-04T09:00 EST",
            "1999-03-11T09:00 EST",
            "1999-03-18T09:00 EST",
            "1999-03-25T09:00 EST",
        ],
    );
}

/// Every Thursday, but only during June, July, and August, forever. The
/// RFC lists 1997 to 1999.
#[test]
fn every_thursday_but_only_during_june_july_and_august_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970605T090000",
            "RRULE:FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
        ],
        ("1997-01-01T00:00", "2000-01-01T00:00"),
        &[
            "1997-06-05T09:00 EDT",
            "1997-06-12T09:00 EDT",
            "1997-06-19T09:00 EDT",
            "1997-06-26T09:00 EDT",
            "1997-07-03T09:00 EDT",
            "1997-07-10T09:00 EDT",
            "1997-07-17T09:00 EDT",
            "1997-07-24T09:00 EDT",
            "1997-07-31T09:00 EDT",
            "1997-08-07T09:00 EDT",
            "1997-08-14T09:00 EDT",
            "1997-08-21T09:00 EDT",
            "1997-08-28T09:00 EDT",
            "1998-06-04T09:00 EDT",
            "1998-06-11T09:00 EDT",
            "1998-06-18T09:00 EDT",
            "1998-06-25T09:00 EDT",
            "1998-07-02T09:00 EDT",
            "1998-07-09T09:00 EDT",
            "1998-07-16T09:00 EDT",
            "1998-07-23T09:00 EDT",
            "1998-07-30T09:00 EDT",
            "1998-08-06T09:00 EDT",
            "1998-08-13T09:00 EDT",
            "1998-08-20T09:00 EDT",
            "1998-08-27T09:00 EDT",
            "1999-06-03T09:00 EDT",
            "1999-06-10T09:00 EDT",
            "1999-06-17T09:00 EDT",
            "1999-06-24T09:00 EDT",
            "1999-07-01T09:00 EDT",
            "1999-07-08T09:00 EDT",
            "1999-07-15T09:00 EDT",
            "1999-07-22T09:00 EDT",
            "1999-07-29T09:00 EDT",
            "1999-08-05T09:00 EDT",
            "1999-08-12T09:00 EDT",
            "1999-08-19T09:00 EDT",
            "1999-08-26T09:00 EDT",
        ],
    );
}

/// Every Friday the 13th, forever. DTSTART (a Tuesday) does not match
/// the rule but is always the first occurrence, so the RFC excludes it with
/// an EXDATE. The RFC lists up to October 13, 2000.
#[test]
fn every_friday_the_13th_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "EXDATE;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        ],
        ("1997-09-01T00:00", "2001-01-01T00:00"),
        &[
            "1998-02-13T09:00 EST",
            "1998-03-13T09:00 EST",
            "1998-11-13T09:00 EST",
            "1999-08-13T09:00 EDT",
            "2000-10-13T09:00 EDT",
        ],
    );
}

/// The first Saturday that follows the first Sunday of the month,
/// forever. The RFC lists up to June 13, 1998.
#[test]
fn the_first_saturday_that_follows_the_first_sunday_of_the_month_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970913T090000",
            "RRULE:FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        ],
        ("1997-09-01T00:00", "1998-06-14T00:00"),
        &[
            "1997-09-13T09:00 EDT",
            "1997-10-11T09:00 EDT",
            "1997-11-08T09:00 EST",
            "1997-12-13T09:00 EST",
            "1998-01-10T09:00 EST",
            "1998-02-07T09:00 EST",
            "1998-03-07T09:00 EST",
            "1998-04-11T09:00 EDT",
            "1998-05-09T09:00 EDT",
            "1998-06-13T09:00 EDT",
        ],
    );
}

/// Every 4 years, the first Tuesday after a Monday in November, forever
/// (U.S. Presidential Election day). The RFC lists 1996 to 2004.
#[test]
fn every_4_years_the_first_tuesday_after_a_monday_in_november_forever() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19961105T090000",
            "RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;",
            " BYMONTHDAY=2,3,4,5,6,7,8",
        ],
        ("1996-01-01T00:00", "2005-01-01T00:00"),
        &[
            "1996-11-05T09:00 EST",
            "2000-11-07T09:00 EST",
            "2004-11-02T09:00 EST",
        ],
    );
}

/// The third instance into the month of one of Tuesday, Wednesday, or
/// Thursday, for the next 3 months.
#[test]
fn the_third_instance_into_the_month_of_tuesday_wednesday_or_thursday_for_3_months() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970904T090000",
            "RRULE:FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        ],
        ("1997-09-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-09-04T09:00 EDT",
            "1997-10-07T09:00 EDT",
            "1997-11-06T09:00 EST",
        ],
    );
}

/// The second-to-last weekday of the month. The RFC lists up to March
/// 30, 1998.
#[test]
fn the_second_to_last_weekday_of_the_month() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970929T090000",
            "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        ],
        ("1997-09-01T00:00", "1998-03-31T00:00"),
        &[
            "1997-09-29T09:00 EDT",
            "1997-10-30T09:00 EST",
            "1997-11-27T09:00 EST",
            "1997-12-30T09:00 EST",
            "1998-01-29T09:00 EST",
            "1998-02-26T09:00 EST",
            "1998-03-30T09:00 EST",
        ],
    );
}

/// Every 3 hours from 9:00 AM to 5:00 PM on a specific day.
///
/// RFC erratum: the RFC prints 09:00, 12:00 and 15:00, but its
/// `UNTIL=19970902T170000Z` is 13:00 EDT, and UNTIL bounds the rule
/// inclusively as an instant (section 3.3.10), so 15:00 EDT (19:00Z) is
/// past it. Verified RFC 5545 Errata ID 3883
/// (<https://www.rfc-editor.org/errata/eid3883>) corrects the rule to
/// `UNTIL=19970902T210000Z` (17:00 EDT). The rule as printed is asserted to
/// give 09:00 and 12:00 only; the corrected rule gives the printed list.
#[test]
fn every_3_hours_from_9_am_to_5_pm_on_a_specific_day() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        &["1997-09-02T09:00 EDT", "1997-09-02T12:00 EDT"],
    );
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-02T12:00 EDT",
            "1997-09-02T15:00 EDT",
        ],
    );
}

/// Every 15 minutes for 6 occurrences.
#[test]
fn every_15_minutes_for_6_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-02T09:15 EDT",
            "1997-09-02T09:30 EDT",
            "1997-09-02T09:45 EDT",
            "1997-09-02T10:00 EDT",
            "1997-09-02T10:15 EDT",
        ],
    );
}

/// Every hour and a half for 4 occurrences.
#[test]
fn every_hour_and_a_half_for_4_occurrences() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        &[
            "1997-09-02T09:00 EDT",
            "1997-09-02T10:30 EDT",
            "1997-09-02T12:00 EDT",
            "1997-09-02T13:30 EDT",
        ],
    );
}

/// Every 20 minutes from 9:00 AM to 4:40 PM every day (both rules the RFC
/// gives). The RFC lists September 2 and 3, 1997, eliding the middle of each
/// day.
#[test]
fn every_20_minutes_from_9_am_to_4_40_pm_every_day() {
    let expected = &[
        "1997-09-02T09:00 EDT",
        "1997-09-02T09:20 EDT",
        "1997-09-02T09:40 EDT",
        "1997-09-02T10:00 EDT",
        "1997-09-02T10:20 EDT",
        "1997-09-02T10:40 EDT",
        "1997-09-02T11:00 EDT",
        "1997-09-02T11:20 EDT",
        "1997-09-02T11:40 EDT",
        "1997-09-02T12:00 EDT",
        "1997-09-02T12:20 EDT",
        "1997-09-02T12:40 EDT",
        "1997-09-02T13:00 EDT",
        "1997-09-02T13:20 EDT",
        "1997-09-02T13:40 EDT",
        "1997-09-02T14:00 EDT",
        "1997-09-02T14:20 EDT",
        "1997-09-02T14:40 EDT",
        "1997-09-02T15:00 EDT",
        "1997-09-02T15:20 EDT",
        "1997-09-02T15:40 EDT",
        "1997-09-02T16:00 EDT",
        "1997-09-02T16:20 EDT",
        "1997-09-02T16:40 EDT",
        "1997-09-03T09:00 EDT",
        "1997-09-03T09:20 EDT",
        "1997-09-03T09:40 EDT",
        "1997-09-03T10:00 EDT",
        "1997-09-03T10:20 EDT",
        "1997-09-03T10:40 EDT",
        "1997-09-03T11:00 EDT",
        "1997-09-03T11:20 EDT",
        "1997-09-03T11:40 EDT",
        "1997-09-03T12:00 EDT",
        "1997-09-03T12:20 EDT",
        "1997-09-03T12:40 EDT",
        "1997-09-03T13:00 EDT",
        "1997-09-03T13:20 EDT",
        "1997-09-03T13:40 EDT",
        "1997-09-03T14:00 EDT",
        "1997-09-03T14:20 EDT",
        "1997-09-03T14:40 EDT",
        "1997-09-03T15:00 EDT",
        "1997-09-03T15:20 EDT",
        "1997-09-03T15:40 EDT",
        "1997-09-03T16:00 EDT",
        "1997-09-03T16:20 EDT",
        "1997-09-03T16:40 EDT",
    ];
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        expected,
    );
    check(
        &[
            "DTSTART;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
        ],
        ("1997-09-02T00:00", "1997-09-04T00:00"),
        expected,
    );
}

/// An example where the days generated makes a difference because of
/// WKST.
#[test]
fn the_days_generated_make_a_difference_because_of_wkst() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970805T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        ],
        ("1997-08-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-08-05T09:00 EDT",
            "1997-08-10T09:00 EDT",
            "1997-08-19T09:00 EDT",
            "1997-08-24T09:00 EDT",
        ],
    );
}

/// Changing only WKST from MO to SU, yields different results.
#[test]
fn changing_only_wkst_from_mo_to_su_yields_different_results() {
    check(
        &[
            "DTSTART;TZID=America/New_York:19970805T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        ],
        ("1997-08-01T00:00", "1998-09-01T00:00"),
        &[
            "1997-08-05T09:00 EDT",
            "1997-08-17T09:00 EDT",
            "1997-08-19T09:00 EDT",
            "1997-08-31T09:00 EDT",
        ],
    );
}

/// An example where an invalid date (i.e., February 30) is ignored.
#[test]
fn an_invalid_date_february_30_is_ignored() {
    check(
        &[
            "DTSTART;TZID=America/New_York:20070115T090000",
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        ],
        ("2007-01-01T00:00", "2008-01-01T00:00"),
        &[
            "2007-01-15T09:00 EST",
            "2007-01-30T09:00 EST",
            "2007-02-15T09:00 EST",
            "2007-03-15T09:00 EDT",
            "2007-03-30T09:00 EDT",
        ],
    );
}
