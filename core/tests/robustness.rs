//! Arbitrary recurrence input never panics: it expands or returns a typed
//! error with a stable code.

use chrono_tz::Tz;
use medsched_core::recurrence::Recurrence;
use proptest::prelude::*;

fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "X"
        ])
        .prop_map(|f| format!("FREQ={f}")),
        (-5i32..70000).prop_map(|n| format!("INTERVAL={n}")),
        (-5i32..70000).prop_map(|n| format!("COUNT={n}")),
        (-400i32..400).prop_map(|n| format!("BYMONTHDAY={n}")),
        (-400i32..400).prop_map(|n| format!("BYYEARDAY={n}")),
        (-60i32..60).prop_map(|n| format!("BYWEEKNO={n}")),
        (-60i32..60).prop_map(|n| format!("BYSETPOS={n}")),
        (0i32..30).prop_map(|n| format!("BYHOUR={n}")),
        (0i32..70).prop_map(|n| format!("BYMINUTE={n}")),
        (0i32..15).prop_map(|n| format!("BYMONTH={n}")),
        (
            -60i32..60,
            prop::sample::select(vec!["MO", "TU", "SU", "XX"])
        )
            .prop_map(|(n, d)| format!("BYDAY={n}{d}")),
        prop::sample::select(vec![
            "BYDAY=MO,WE,FR",
            "WKST=SU",
            "UNTIL=20270101T000000Z",
            "UNTIL=2027",
            "UNTIL=19000101"
        ])
        .prop_map(str::to_owned),
        "[A-Z=;,0-9-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_rules_expand_or_fail_with_a_code(
        parts in prop::collection::vec(part(), 0..5),
        zone in prop::sample::select(vec!["America/New_York", "Australia/Lord_Howe", "UTC", "Mars/Base"]),
        year in 1900i32..2100,
        span_days in 1i64..800,
    ) {
        let text = format!(
            "DTSTART;TZID={zone}:{year}0310T023000\nRRULE:{}",
            parts.join(";")
        );
        match Recurrence::parse_ical(&text, Tz::UTC) {
            Ok(set) => {
                let from = set.dtstart_instant();
                match set.expand(from, from + span_days * 86_400, 500) {
                    Ok(e) => {
                        prop_assert!(e.instants.windows(2).all(|w| w[0] < w[1]), "not sorted and distinct");
                        prop_assert!(e.instants.len() <= 500);
                    }
                    Err(e) => prop_assert!(["recurrence_too_large", "end_before_start"].contains(&e.code()), "{}", e.code()),
                }
            }
            Err(e) => {
                prop_assert!(["rrule_invalid", "unknown_zone"].contains(&e.code()), "{}", e.code());
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn arbitrary_text_parses_or_fails_with_a_code(text in "[A-Za-z0-9;:=,\n /_-]{0,120}") {
        if let Err(e) = Recurrence::parse_ical(&text, Tz::UTC) {
            prop_assert!(["rrule_invalid", "unknown_zone"].contains(&e.code()), "{}", e.code());
        }
    }
}
