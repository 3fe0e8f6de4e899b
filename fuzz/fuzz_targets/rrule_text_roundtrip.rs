//! Arbitrary iCalendar recurrence text through `Recurrence::parse_ical` and
//! a bounded `expand`.
//!
//! Input: the text, optionally followed by a NUL byte and bytes that
//! choose the default zone, the window and the limit (without them: New
//! York, a window from a day before DTSTART for two weeks, 100
//! occurrences), so seed files are plain iCalendar and crashes minimize. Checks: no panic; errors
//! pass `check_error`; an expansion is ascending, distinct, inside its
//! window and within its limit; a larger limit extends it; splitting the
//! window in two gives the same instants; the fast path (weekly and daily
//! rules) gives exactly the general path's walls; and the round trip holds:
//! DTSTART and the rule texts the set reports, rendered back to text and
//! parsed again (or added one by one with `add_rrule`), expand the same.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use medsched_core::recurrence::Recurrence;
use medsched_core::time::{parse_zone, ZoneTable};
use medsched_fuzz::{check_error, ONE_DAY, ZONES};

fn check_expansion(exp: &medsched_core::recurrence::Expansion, from: i64, to: i64, limit: usize) {
    assert!(exp.instants.len() <= limit, "more than the limit");
    assert!(
        exp.instants.windows(2).all(|w| w[0] < w[1]),
        "not ascending and distinct: {:?}",
        exp.instants
    );
    assert!(
        exp.instants.iter().all(|t| *t >= from && *t < to),
        "outside [{from}, {to}): {:?}",
        exp.instants
    );
}

fn same_expansion(a: &Recurrence, b: &Recurrence, from: i64, to: i64, limit: usize, what: &str) {
    match (a.expand(from, to, limit), b.expand(from, to, limit)) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{what} expands differently"),
        (Err(x), Err(y)) => assert_eq!(x.code(), y.code(), "{what} fails differently"),
        (x, y) => panic!("{what}: {x:?} against {y:?}"),
    }
}

/// The window and limit: `(from, to, limit)` around DTSTART.
fn window(u: &mut Unstructured<'_>, start: i64) -> arbitrary::Result<(i64, i64, usize)> {
    // From a week before DTSTART to three weeks after it, one hour to two
    // weeks long; 1 to 300 occurrences.
    let from = start + 3600 * u.int_in_range(0..=28 * 24)? - 7 * ONE_DAY;
    let to = from + 3600 * u.int_in_range(1..=14 * 24)?;
    Ok((from, to, u.int_in_range(1..=300)?))
}

fuzz_target!(|data: &[u8]| {
    let (text_bytes, choice) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text_bytes) else {
        return;
    };
    if text.len() > 4096 {
        return;
    }
    let mut u = Unstructured::new(choice.unwrap_or_default());
    let zone_name = match choice {
        Some(_) => u.choose(ZONES).copied().unwrap_or("UTC"),
        None => "America/New_York",
    };
    let Ok(zone) = parse_zone(zone_name) else {
        return;
    };
    let rec = match Recurrence::parse_ical(text, zone) {
        Ok(r) => r,
        Err(e) => {
            check_error(&e);
            return;
        }
    };
    let start = rec.dtstart_instant();
    let (from, to, limit) = match choice {
        Some(_) => match window(&mut u, start) {
            Ok(w) => w,
            Err(_) => return,
        },
        None => (start - ONE_DAY, start + 13 * ONE_DAY, 100),
    };

    let exp = match rec.expand(from, to, limit) {
        Ok(x) => x,
        Err(e) => {
            check_error(&e);
            return;
        }
    };
    check_expansion(&exp, from, to, limit);

    // A larger limit keeps every instant and, when nothing was cut, adds none.
    if let Ok(more) = rec.expand(from, to, limit * 2) {
        check_expansion(&more, from, to, limit * 2);
        assert!(
            more.instants.starts_with(&exp.instants),
            "a larger limit changes the first instants"
        );
        if !exp.truncated {
            assert_eq!(more.instants, exp.instants, "untruncated grows");
            assert!(!more.truncated);
        }
    }

    // [from, mid) and [mid, to) together give [from, to).
    let mid = from + (to - from) / 2;
    if mid > from && !exp.truncated {
        if let (Ok(a), Ok(b)) = (rec.expand(from, mid, limit), rec.expand(mid, to, limit)) {
            if !a.truncated && !b.truncated {
                let mut joined = a.instants.clone();
                joined.extend_from_slice(&b.instants);
                assert_eq!(joined, exp.instants, "split at {mid} differs");
            }
        }
    }

    // The fast path equals the general path.
    if rec.is_fast() {
        let table = ZoneTable::new(rec.zone(), from - 3 * ONE_DAY, to + 3 * ONE_DAY);
        let wall_from = table.wall(from) - ONE_DAY;
        let wall_to = table.wall(to) + ONE_DAY;
        let (mut fast, mut general) = (Vec::new(), Vec::new());
        let f = rec.walls(&table, wall_from, wall_to, limit, &mut fast);
        let g = rec.walls_general(&table, wall_from, wall_to, limit, &mut general);
        if let (Ok(f), Ok(g)) = (&f, &g) {
            assert_eq!(fast, general, "fast path walls differ");
            assert_eq!(f, g, "fast path truncation differs");
        }
    }

    // Round trips through the rule texts the set reports. RDATE, EXDATE and
    // date-only sets carry state the texts do not show: skip those.
    let upper = text.to_ascii_uppercase();
    if upper.contains("RDATE") || upper.contains("EXDATE") || upper.contains("VALUE=DATE") {
        return;
    }
    let rules: Vec<String> = rec.rule_texts().map(str::to_owned).collect();
    let mut added = Recurrence::single(rec.zone(), rec.dtstart()).with_policy(rec.policy());
    for r in &rules {
        if let Err(e) = added.add_rrule(r) {
            panic!("rule text `{r}` of a parsed set is refused: {e}");
        }
    }
    same_expansion(&rec, &added, from, to, limit, "add_rrule of the rule texts");

    let mut rendered = format!(
        "DTSTART;TZID={}:{}\n",
        rec.zone().name(),
        rec.dtstart().format("%Y%m%dT%H%M%S")
    );
    for r in &rules {
        rendered.push_str("RRULE:");
        rendered.push_str(r);
        rendered.push('\n');
    }
    match Recurrence::parse_ical(&rendered, zone) {
        Ok(again) => {
            let again = again.with_policy(rec.policy());
            same_expansion(&rec, &again, from, to, limit, "the rendered text");
        }
        Err(e) => panic!("rendered text {rendered:?} is refused: {e}"),
    }
});
