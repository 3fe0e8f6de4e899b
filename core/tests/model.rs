//! Model-based property tests: availability against a minute-by-minute
//! brute force that uses chrono-tz directly, on random clinics around DST
//! changes; and every listed slot passes the booking predicate.

use std::collections::BTreeSet;

use chrono::{
    Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use chrono_tz::Tz;
use medsched_core::records::*;
use medsched_core::{Schedule, SlotQuery};
use proptest::prelude::*;

use crate::common::t;

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/Santiago",
];

/// Days near the 2027 transitions of the zones above.
const WINDOW_STARTS: &[&str] = &[
    "2027-03-13",
    "2027-03-27",
    "2027-04-03",
    "2027-09-04",
    "2027-10-02",
    "2027-10-30",
    "2027-11-06",
    "2027-06-14",
];

#[derive(Debug, Clone)]
struct Block {
    days: u8,
    start_min: u32,
    end_min: u32,
}

#[derive(Debug, Clone)]
struct Spec {
    zone: usize,
    capacity: u32,
    blocks: Vec<Block>,
    skip: bool,
    override_day: Option<(i64, Option<(u32, u32)>)>,
    time_off: Option<(i64, i64)>,
    appts: Vec<(i64, i64, u32, u32, u8)>,
}

fn block() -> impl Strategy<Value = Block> {
    (1u8..128, 0u32..96, 1u32..48).prop_map(|(days, s, len)| {
        let start_min = s * 15;
        let end_min = (start_min + len * 15) % 1440;
        Block {
            days,
            start_min,
            end_min: if end_min == start_min {
                (end_min + 15) % 1440
            } else {
                end_min
            },
        }
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0usize..ZONES.len(),
        1u32..3,
        prop::collection::vec(block(), 1..3),
        any::<bool>(),
        prop::option::of((0i64..3, prop::option::of((0u32..48, 1u32..24)))),
        prop::option::of((0i64..4320, 15i64..600)),
        prop::collection::vec((0i64..4320, 1i64..12, 0u32..3, 0u32..3, 0u8..10), 0..8),
    )
        .prop_map(|(zone, capacity, blocks, skip, ov, off, appts)| Spec {
            zone,
            capacity,
            blocks,
            skip,
            override_day: ov.map(|(d, b)| (d, b.map(|(s, l)| (s * 30, (s * 30 + l * 30) % 1440)))),
            time_off: off,
            appts,
        })
}

#[derive(Debug, Clone)]
struct TypeSpec {
    duration: u32,
    before: u32,
    after: u32,
    step: u32,
    align: u32,
    notice: u32,
    horizon: Option<u32>,
    max_per_day: Option<u32>,
}

fn type_spec() -> impl Strategy<Value = TypeSpec> {
    (
        prop::sample::select(vec![15u32, 20, 30, 45, 60]),
        prop::sample::select(vec![0u32, 5, 10]),
        prop::sample::select(vec![0u32, 5, 15]),
        prop::sample::select(vec![10u32, 15, 30, 45, 60]),
        prop::sample::select(vec![0u32, 5]),
        prop::sample::select(vec![0u32, 60, 600]),
        prop::option::of(1u32..3),
        prop::option::of(1u32..3),
    )
        .prop_map(
            |(duration, before, after, step, align, notice, horizon, max_per_day)| TypeSpec {
                duration,
                before,
                after,
                step,
                align,
                notice,
                horizon,
                max_per_day,
            },
        )
}

const NAMES: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn build(specs: &[Spec], ts: &TypeSpec, start: NaiveDate) -> Clinic {
    let base = start.and_time(NaiveTime::MIN).and_utc().timestamp();
    let mut c = Clinic::default();
    c.appointment_types.push(AppointmentType {
        id: "visit".into(),
        name: String::new(),
        duration_min: ts.duration,
        buffer_before_min: ts.before,
        buffer_after_min: ts.after,
        step_min: ts.step,
        align_offset_min: ts.align,
        min_notice_min: ts.notice,
        horizon_days: ts.horizon,
        max_per_day: ts.max_per_day,
        max_per_week: None,
        requirements: vec![Requirement {
            count: 1,
            resources: vec![],
            tag: Some("p".into()),
        }],
        reminders_min: vec![],
    });
    for (i, sp) in specs.iter().enumerate() {
        let id = format!("r{i}");
        c.resources.push(Resource {
            id: id.as_str().into(),
            name: String::new(),
            kind: ResourceKind::Provider,
            zone: ZONES[sp.zone].into(),
            capacity: sp.capacity,
            tags: vec!["p".into()],
            department: None,
        });
        for b in &sp.blocks {
            let days: Vec<&str> = (0..7)
                .filter(|d| b.days & (1 << d) != 0)
                .map(|d| NAMES[d])
                .collect();
            let first = start - Duration::days(10);
            c.working_hours.push(WorkingHours {
                resource: id.as_str().into(),
                dtstart: first.and_time(
                    NaiveTime::from_num_seconds_from_midnight_opt(b.start_min * 60, 0).unwrap(),
                ),
                end: NaiveTime::from_num_seconds_from_midnight_opt(b.end_min * 60, 0).unwrap(),
                rrule: format!("FREQ=WEEKLY;BYDAY={}", days.join(",")),
                zone: None,
                rdates: vec![],
                exdates: vec![],
                nonexistent: if sp.skip {
                    Nonexistent::Skip
                } else {
                    Nonexistent::ShiftForward
                },
            });
        }
        if let Some((d, blk)) = sp.override_day {
            c.overrides.push(DateOverride {
                resource: id.as_str().into(),
                date: start + Duration::days(d),
                blocks: blk
                    .filter(|(s, e)| s != e)
                    .map(|(s, e)| LocalBlock {
                        start: NaiveTime::from_num_seconds_from_midnight_opt(s * 60, 0).unwrap(),
                        end: NaiveTime::from_num_seconds_from_midnight_opt(e * 60, 0).unwrap(),
                    })
                    .into_iter()
                    .collect(),
            });
        }
        if let Some((o, len)) = sp.time_off {
            c.time_off.push(TimeOff {
                id: format!("off{i}"),
                resource: Some(id.as_str().into()),
                start: t_of(base + o * 60),
                end: t_of(base + (o + len) * 60),
                kind: TimeOffKind::Vacation,
            });
        }
        for (k, &(s, len, bb, ba, st)) in sp.appts.iter().enumerate() {
            let start_min = s / 5 * 5;
            let status = match st {
                0 => AppointmentStatus::Cancelled,
                1 => AppointmentStatus::Proposed,
                2 => AppointmentStatus::EnteredInError,
                3 => AppointmentStatus::Arrived,
                _ => AppointmentStatus::Booked,
            };
            c.appointments.push(Appointment {
                id: format!("a{i}-{k}").as_str().into(),
                type_id: if k % 2 == 0 {
                    Some("visit".into())
                } else {
                    None
                },
                patient: None,
                resources: vec![id.as_str().into()],
                start: Some(t_of(base + start_min * 60)),
                end: Some(t_of(base + (start_min + len * 10) * 60)),
                status,
                buffer_before_min: bb * 5,
                buffer_after_min: ba * 5,
                reason: None,
                notes: None,
            });
        }
    }
    c
}

fn t_of(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap()
}

/// RFC 5545 reading with chrono-tz alone: first occurrence in a fold; in a
/// gap, the offset in force 30 hours earlier (always before the gap).
fn resolve(tz: Tz, naive: NaiveDateTime, skip: bool) -> Option<i64> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => Some(d.timestamp()),
        LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
        LocalResult::None => {
            if skip {
                return None;
            }
            let probe = naive.and_utc() - Duration::hours(30);
            let before = tz
                .offset_from_utc_datetime(&probe.naive_utc())
                .fix()
                .local_minus_utc();
            Some(naive.and_utc().timestamp() - i64::from(before))
        }
    }
}

fn local(tz: Tz, secs: i64) -> NaiveDateTime {
    tz.from_utc_datetime(&t_of(secs).naive_utc()).naive_local()
}

/// Minute-by-minute model of one resource: (open, busy count) per minute of
/// `[lo, hi)` (minutes since the epoch).
fn model(c: &Clinic, i: usize, lo: i64, hi: i64) -> (Vec<bool>, Vec<u32>) {
    let r = &c.resources[i];
    let tz: Tz = r.zone.parse().unwrap();
    let n = (hi - lo) as usize;
    let mut open = vec![false; n];
    let mark = |a: i64, b: i64, open: &mut Vec<bool>, v: bool| {
        for m in a.max(lo * 60) / 60..(b.min(hi * 60) + 59) / 60 {
            if m >= lo && m < hi && m * 60 >= a && m * 60 < b {
                open[(m - lo) as usize] = v;
            }
        }
    };
    let first = local(tz, lo * 60).date() - Duration::days(2);
    let last = local(tz, hi * 60).date() + Duration::days(2);
    let mut d = first;
    while d <= last {
        let ov = c
            .overrides
            .iter()
            .find(|o| o.resource == r.id && o.date == d);
        let mut blocks: Vec<(NaiveTime, NaiveTime, bool)> = Vec::new();
        match ov {
            Some(o) => blocks.extend(o.blocks.iter().map(|b| (b.start, b.end, false))),
            None => {
                for w in c.working_hours.iter().filter(|w| w.resource == r.id) {
                    let days = w.rrule.split("BYDAY=").nth(1).unwrap();
                    let code = NAMES[d.weekday().num_days_from_monday() as usize];
                    if d >= w.dtstart.date() && days.split(',').any(|x| x == code) {
                        blocks.push((w.dtstart.time(), w.end, w.nonexistent == Nonexistent::Skip));
                    }
                }
            }
        }
        for (s, e, skip) in blocks {
            let end_date = if e <= s { d.succ_opt().unwrap() } else { d };
            let (Some(a), Some(b)) = (
                resolve(tz, d.and_time(s), skip),
                resolve(tz, end_date.and_time(e), false),
            ) else {
                continue;
            };
            if b > a {
                mark(a, b, &mut open, true);
            }
        }
        d = d.succ_opt().unwrap();
    }
    for off in c
        .time_off
        .iter()
        .filter(|o| o.resource.as_ref() == Some(&r.id))
    {
        mark(off.start.timestamp(), off.end.timestamp(), &mut open, false);
    }
    let mut count = vec![0u32; n];
    for a in c
        .appointments
        .iter()
        .filter(|a| a.resources.contains(&r.id) && a.status.holds_time())
    {
        let s = a.start.unwrap().timestamp() - i64::from(a.buffer_before_min) * 60;
        let e = a.end.unwrap().timestamp() + i64::from(a.buffer_after_min) * 60;
        for m in s / 60..e / 60 {
            if m >= lo && m < hi {
                count[(m - lo) as usize] += 1;
            }
        }
    }
    (open, count)
}

/// Brute-force slots: every minute start in `[from, to)` checked minute by minute.
fn brute_slots(c: &Clinic, ts: &TypeSpec, from: i64, to: i64, now: i64) -> BTreeSet<(String, i64)> {
    let mut out = BTreeSet::new();
    let reach_before = i64::from(ts.before);
    let reach_after = i64::from(ts.duration + ts.after);
    let (lo, hi) = (from / 60 - reach_before - 1, to / 60 + reach_after + 1);
    for (i, r) in c.resources.iter().enumerate() {
        let tz: Tz = r.zone.parse().unwrap();
        let (open, count) = model(c, i, lo, hi);
        let mut per_day = std::collections::HashMap::new();
        for a in c.appointments.iter().filter(|a| {
            a.resources.contains(&r.id)
                && a.status.holds_time()
                && a.type_id.as_ref().is_some_and(|x| x.as_str() == "visit")
        }) {
            *per_day
                .entry(local(tz, a.start.unwrap().timestamp()).date())
                .or_insert(0u32) += 1;
        }
        let mut m = from / 60;
        while m * 60 < to {
            let s = m * 60;
            let l = local(tz, s);
            let tod = l.num_seconds_from_midnight() / 60;
            let on_grid = tod >= ts.align && (tod - ts.align) % ts.step == 0;
            let timely = s >= now
                && s >= now + i64::from(ts.notice) * 60
                && ts.horizon.is_none_or(|h| s < now + i64::from(h) * 86_400);
            let limited = ts
                .max_per_day
                .is_some_and(|max| per_day.get(&l.date()).copied().unwrap_or(0) >= max);
            if on_grid && timely && !limited {
                let fits = (m - reach_before..m + reach_after).all(|x| {
                    let k = (x - lo) as usize;
                    open[k] && count[k] < r.capacity
                });
                if fits {
                    out.insert((r.id.0.clone(), s));
                }
            }
            m += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn slots_equal_minute_by_minute_model(
        specs in prop::collection::vec(spec(), 1..3),
        ts in type_spec(),
        start in prop::sample::select(WINDOW_STARTS.to_vec()),
        now_offset in -600i64..1200,
    ) {
        let start = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
        let c = build(&specs, &ts, start);
        let s = Schedule::new(&c).unwrap();
        let from = start.and_time(NaiveTime::MIN).and_utc().timestamp();
        let to = from + 3 * 86_400;
        let now = from + now_offset * 60;
        let q = SlotQuery {
            type_id: "visit".into(),
            from: t_of(from),
            to: t_of(to),
            now: t_of(now),
            resources: vec![],
        };
        let got: BTreeSet<(String, i64)> = s
            .slots(&q)
            .unwrap()
            .entries
            .iter()
            .map(|e| (s.resource_id(e.resource).unwrap().to_owned(), e.start))
            .collect();
        let want = brute_slots(&c, &ts, from, to, now);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn listed_slots_pass_the_booking_predicate_and_avoid_busy_time(
        specs in prop::collection::vec(spec(), 1..3),
        ts in type_spec(),
        start in prop::sample::select(WINDOW_STARTS.to_vec()),
        probes in prop::collection::vec(0i64..(3 * 1440), 20),
    ) {
        let start = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
        let c = build(&specs, &ts, start);
        let s = Schedule::new(&c).unwrap();
        let from = start.and_time(NaiveTime::MIN).and_utc().timestamp();
        let to = from + 3 * 86_400;
        let now = t_of(from);
        let q = SlotQuery { type_id: "visit".into(), from: t_of(from), to: t_of(to), now, resources: vec![] };
        let slots = s.slots(&q).unwrap();
        let listed: BTreeSet<(String, i64)> = slots
            .entries
            .iter()
            .map(|e| (s.resource_id(e.resource).unwrap().to_owned(), e.start))
            .collect();
        for (r, start) in &listed {
            let e = s.explain("visit", r, t_of(*start), now, None).unwrap();
            prop_assert!(e.bookable, "listed but not bookable: {} {} {:?}", r, start, e.reasons);
            // No listed slot overlaps busy time of a capacity-1 resource.
            let res = c.resources.iter().find(|x| x.id.as_str() == r).unwrap();
            if res.capacity == 1 {
                let need = (start - i64::from(ts.before) * 60, start + i64::from(ts.duration + ts.after) * 60);
                for a in c.appointments.iter().filter(|a| a.resources.contains(&res.id) && a.status.holds_time()) {
                    let b = (
                        a.start.unwrap().timestamp() - i64::from(a.buffer_before_min) * 60,
                        a.end.unwrap().timestamp() + i64::from(a.buffer_after_min) * 60,
                    );
                    prop_assert!(!(b.0 < need.1 && b.1 > need.0), "slot {} overlaps {}", start, a.id);
                }
            }
        }
        // Explanations agree with the listing on arbitrary starts.
        for p in &probes {
            for r in c.resources.iter() {
                let at = from + p * 60;
                let e = s.explain("visit", r.id.as_str(), t_of(at), now, None).unwrap();
                let is_listed = listed.contains(&(r.id.0.clone(), at));
                prop_assert_eq!(e.bookable, is_listed, "{} at {}: {:?}", r.id, at, e.reasons);
                prop_assert_eq!(e.reasons.is_empty(), is_listed, "{} at {}: {:?}", r.id, at, e.reasons);
            }
        }
    }
}

#[test]
fn brute_force_model_is_not_vacuous() {
    // A fixed clinic where the model must find slots, so the property above
    // compares real sets.
    let c = build(
        &[Spec {
            zone: 0,
            capacity: 1,
            blocks: vec![Block {
                days: 0x7f,
                start_min: 8 * 60,
                end_min: 12 * 60,
            }],
            skip: false,
            override_day: None,
            time_off: None,
            appts: vec![],
        }],
        &TypeSpec {
            duration: 30,
            before: 0,
            after: 0,
            step: 15,
            align: 0,
            notice: 0,
            horizon: None,
            max_per_day: None,
        },
        NaiveDate::from_ymd_opt(2027, 3, 13).unwrap(),
    );
    let from = t("2027-03-13T00:00:00Z").timestamp();
    let got = brute_slots(
        &c,
        &TypeSpec {
            duration: 30,
            before: 0,
            after: 0,
            step: 15,
            align: 0,
            notice: 0,
            horizon: None,
            max_per_day: None,
        },
        from,
        from + 3 * 86_400,
        from,
    );
    assert_eq!(got.len(), 3 * 15);
    let _ = chrono::Utc.timestamp_opt(0, 0);
}
