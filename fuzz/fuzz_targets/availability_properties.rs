//! Slot listings of arbitrary small clinics, built as values.
//!
//! Checks: no panic; the clinic compiles and the query is answered; the
//! entries are sorted and distinct, inside the window, after the notice and
//! before the horizon; every listed start with the type's buffers lies in
//! `Schedule::open` and outside `Schedule::busy` (so inside `free`);
//! `explain` calls every listed start bookable with no reason, calls a
//! sample of unlisted grid starts not bookable (for "one of these
//! resources" types) with at least one reason, and says "bookable" exactly
//! when it gives no reason; the parallel listing equals the serial one.
#![no_main]

use std::collections::{BTreeSet, HashMap};

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use medsched_core::interval::{covers, Span};
use medsched_core::{Explanation, Schedule};
use medsched_fuzz::{at, check_error, ONE_DAY};

/// A resource's open, busy and free spans.
type Spans = (Vec<Span>, Vec<Span>, Vec<Span>);

/// Most explain calls per input, to keep executions fast.
const MAX_EXPLAINED: usize = 48;

fn explain_ok(
    s: &Schedule,
    type_id: &str,
    resource: &str,
    start: i64,
    now: i64,
) -> Option<Explanation> {
    match s.explain(type_id, resource, at(start), at(now), None) {
        Ok(x) => {
            assert_eq!(
                x.bookable,
                x.reasons.is_empty(),
                "explain of {resource} at {start} says bookable={} with reasons {:?}",
                x.bookable,
                x.reasons
            );
            Some(x)
        }
        Err(e) => {
            check_error(&e);
            panic!("explain fails for a known type and resource: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(built) = medsched_fuzz::clinic(&mut u, true) else {
        return;
    };
    let Ok(q) = medsched_fuzz::query(&mut u, &built) else {
        return;
    };
    medsched_fuzz::debug_dump("clinic", &built.clinic);
    medsched_fuzz::debug_dump("query", &q);
    let schedule = match Schedule::new(&built.clinic) {
        Ok(s) => s,
        Err(e) => {
            check_error(&e);
            panic!("a generated clinic is refused: {e}");
        }
    };
    let slots = match schedule.slots(&q) {
        Ok(s) => {
            medsched_fuzz::debug_dump("slots", &s.entries);
            s
        }
        Err(e) => {
            check_error(&e);
            panic!("a generated query is refused: {e}");
        }
    };
    match schedule.slots_parallel(&q, 2) {
        Ok(p) => assert_eq!(p, slots, "parallel listing differs"),
        Err(e) => panic!("parallel listing fails: {e}"),
    }

    let Some(ty) = built
        .clinic
        .appointment_types
        .iter()
        .find(|t| t.id.as_str() == q.type_id)
    else {
        return;
    };
    let before = i64::from(ty.buffer_before_min) * 60;
    let after = i64::from(ty.buffer_after_min) * 60;
    let duration = i64::from(ty.duration_min) * 60;
    let step = i64::from(ty.step_min) * 60;
    let (from, to, now) = (q.from.timestamp(), q.to.timestamp(), q.now.timestamp());
    let notice = i64::from(ty.min_notice_min) * 60;
    let horizon = ty.horizon_days.map(|d| i64::from(d) * ONE_DAY);
    let single_choice = matches!(ty.requirements.as_slice(), [r] if r.count == 1);
    assert_eq!(slots.duration, duration);

    assert!(
        slots.entries.windows(2).all(|w| w[0] < w[1]),
        "entries not sorted and distinct"
    );
    // Per resource: open, busy and free over a window around the query.
    let (wide_from, wide_to) = (from - before - ONE_DAY, to + duration + after + ONE_DAY);
    let mut spans: HashMap<u32, Spans> = HashMap::new();
    let mut listed: BTreeSet<(u32, i64)> = BTreeSet::new();
    for e in &slots.entries {
        let Some(rid) = slots.resource_id(e.resource) else {
            panic!("entry with unknown resource index {}", e.resource);
        };
        if !q.resources.is_empty() {
            assert!(q.resources.iter().any(|r| r == rid), "resource filter");
        }
        let s = e.start;
        assert!(s >= from && s < to, "start {s} outside [{from}, {to})");
        assert!(s >= now + notice, "start {s} inside the notice");
        if let Some(h) = horizon {
            assert!(s < now + h, "start {s} beyond the horizon");
        }
        let (open, busy, free) = spans.entry(e.resource).or_insert_with(|| {
            let get = |r: Result<Vec<Span>, medsched_core::Error>| match r {
                Ok(v) => v,
                Err(e) => panic!("availability query fails: {e}"),
            };
            (
                get(schedule.open(rid, at(wide_from), at(wide_to))),
                get(schedule.busy(rid, at(wide_from), at(wide_to))),
                get(schedule.free(rid, at(wide_from), at(wide_to))),
            )
        });
        let (need_from, need_to) = (s - before, s + duration + after);
        assert!(
            covers(open, need_from, need_to),
            "slot {rid} at {s} not inside open time {open:?}"
        );
        assert!(
            busy.iter().all(|b| b.1 <= need_from || b.0 >= need_to),
            "slot {rid} at {s} overlaps busy time {busy:?}"
        );
        assert!(
            covers(free, need_from, need_to),
            "slot {rid} at {s} not inside free time {free:?}"
        );
        listed.insert((e.resource, s));
    }

    // Every listed start is bookable by explain (a sample when many).
    let stride = slots.entries.len().div_ceil(MAX_EXPLAINED).max(1);
    for e in slots.entries.iter().step_by(stride) {
        let rid = slots.resource_id(e.resource).unwrap_or_default();
        if let Some(x) = explain_ok(&schedule, &q.type_id, rid, e.start, now) {
            assert!(
                x.bookable,
                "listed start {rid} at {} is not bookable: {:?}",
                e.start, x.reasons
            );
        }
    }

    // Unlisted starts on and off the grid: the listing's neighbours and a
    // few drawn from the input.
    let ids: Vec<String> = built
        .clinic
        .resources
        .iter()
        .map(|r| r.id.0.clone())
        .filter(|r| q.resources.is_empty() || q.resources.contains(r))
        .collect();
    let mut probes: Vec<(String, i64)> = Vec::new();
    for e in slots.entries.iter().step_by(stride).take(8) {
        let rid = slots.resource_id(e.resource).unwrap_or_default().to_owned();
        probes.push((rid.clone(), e.start - step));
        probes.push((rid.clone(), e.start + step));
        probes.push((rid, e.start + 300));
    }
    for _ in 0..8 {
        let (Ok(r), Ok(k)) = (
            u.choose(&ids).cloned(),
            u.int_in_range(0..=((to - from) / 300).max(0)),
        ) else {
            break;
        };
        probes.push((r, from + 300 * k));
    }
    let index: HashMap<&str, u32> = (0u32..)
        .map_while(|i| slots.resource_id(i).map(|r| (r, i)))
        .collect();
    for (rid, s) in probes {
        if s < from || s >= to {
            continue;
        }
        let Some(&r) = index.get(rid.as_str()) else {
            continue;
        };
        if listed.contains(&(r, s)) {
            continue;
        }
        let Some(x) = explain_ok(&schedule, &q.type_id, &rid, s, now) else {
            continue;
        };
        if single_choice {
            assert!(
                !x.bookable,
                "unlisted start {rid} at {s} is bookable by explain"
            );
        }
    }
});
