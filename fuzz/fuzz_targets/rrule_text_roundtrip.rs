//! Arbitrary iCalendar recurrence text through `Recurrence::parse_ical` and
//! a bounded `expand`.
//!
//! Input: the text itself (the default zone and the window come from a
//! hash of it, so seed files are plain iCalendar). Checks: no panic; errors
//! pass `check_error`; an expansion is ascending, distinct, inside its
//! window and within its limit; a larger limit extends it; splitting the
//! window in two gives the same instants; the fast path (weekly and daily
//! rules) gives exactly the general path's walls; and the round trip holds:
//! DTSTART and the rule texts the set reports, rendered back to text and
//! parsed again (or added one by one with `add_rrule`), expand the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsched_core::recurrence::Recurrence;
use medsched_core::time::{parse_zone, ZoneTable};
use medsched_fuzz::{check_error, ONE_DAY, ZONES};

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 4096 {
        return;
    }
    let h = fnv(data);
    let zone_name = ZONES[(h % ZONES.len() as u64) as usize];
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
    // A window from a week before DTSTART to three weeks after it, of one
    // hour to two weeks; a limit of 1 to 300 occurrences.
    let start = rec.dtstart_instant();
    let from = start + ((h >> 8) % (28 * 24)) as i64 * 3600 - 7 * ONE_DAY;
    let to = from + (1 + (h >> 20) % (14 * 24)) as i64 * 3600;
    let limit = 1 + ((h >> 32) % 300) as usize;

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
