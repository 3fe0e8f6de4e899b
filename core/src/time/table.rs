//! Zone transitions, computed once per zone and year and cached, so that
//! converting between wall time and instants is a short integer search.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use super::{utc_of, Nonexistent, DAY};

/// One stretch of constant UTC offset: from `start` (an instant) on, until
/// the next period's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    start: i64,
    offset: i64,
}

/// The offsets of one zone over a range of instants, as sorted periods.
///
/// Lookups outside the range still answer, with the first or last period's
/// offset; build the table over the range you work in (plus a day or two).
#[derive(Debug, Clone)]
pub struct ZoneTable {
    zone: Tz,
    periods: Vec<Period>,
    /// For each period, the wall time (local seconds) at which it ends;
    /// ascending.
    wall_ends: Vec<i64>,
}

type YearCache = RwLock<HashMap<(Tz, i32), Arc<[Period]>>>;

fn cache() -> &'static YearCache {
    static CACHE: OnceLock<YearCache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

fn offset_at(zone: Tz, instant: i64) -> i64 {
    i64::from(
        zone.offset_from_utc_datetime(&utc_of(instant).naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

const YEAR_START_1970: i64 = 0;

fn year_bounds(year: i32) -> (i64, i64) {
    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .map(|d| super::day_of_date(d) * DAY)
        .unwrap_or(YEAR_START_1970);
    let end = chrono::NaiveDate::from_ymd_opt(year + 1, 1, 1)
        .map(|d| super::day_of_date(d) * DAY)
        .unwrap_or(start + 366 * DAY);
    (start, end)
}

/// Samples every six hours; no zone has two transitions closer than that.
const SAMPLE: i64 = 6 * 3600;

fn compute_year(zone: Tz, year: i32) -> Arc<[Period]> {
    let (start, end) = year_bounds(year);
    let mut periods = vec![Period {
        start,
        offset: offset_at(zone, start),
    }];
    let mut t = start;
    let mut current = periods.first().map_or(0, |p| p.offset);
    while t < end {
        let next = (t + SAMPLE).min(end);
        let off = offset_at(zone, next);
        if off != current {
            // The change lies in (t, next]: find its first second.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(zone, mid) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let at_hi = offset_at(zone, hi);
            periods.push(Period {
                start: hi,
                offset: at_hi,
            });
            current = at_hi;
            if at_hi != off {
                // Two changes inside one sample; rescan from here.
                t = hi;
                continue;
            }
        }
        t = next;
    }
    periods.into()
}

fn year_periods(zone: Tz, year: i32) -> Arc<[Period]> {
    if let Ok(map) = cache().read() {
        if let Some(found) = map.get(&(zone, year)) {
            return Arc::clone(found);
        }
    }
    let computed = compute_year(zone, year);
    if let Ok(mut map) = cache().write() {
        map.entry((zone, year))
            .or_insert_with(|| Arc::clone(&computed));
    }
    computed
}

fn year_of(instant: i64) -> i32 {
    use chrono::Datelike;
    utc_of(instant).year()
}

impl ZoneTable {
    /// The table of `zone` covering instants in `[from, to)`.
    pub fn new(zone: Tz, from: i64, to: i64) -> Self {
        let first = year_of(from.min(to));
        let last = year_of(to.max(from)).max(first);
        let mut periods: Vec<Period> = Vec::with_capacity(4 * (last - first + 1) as usize);
        for year in first..=last {
            for p in year_periods(zone, year).iter() {
                if periods.last().is_some_and(|l| l.offset == p.offset) {
                    continue;
                }
                periods.push(*p);
            }
        }
        if let Some(p) = periods.first_mut() {
            p.start = i64::MIN;
        }
        let wall_ends = (0..periods.len())
            .map(|i| {
                let off = periods.get(i).map_or(0, |p| p.offset);
                periods.get(i + 1).map_or(i64::MAX, |n| n.start + off)
            })
            .collect();
        Self {
            zone,
            periods,
            wall_ends,
        }
    }

    /// The zone this table describes.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    fn index_at(&self, instant: i64) -> usize {
        self.periods
            .partition_point(|p| p.start <= instant)
            .saturating_sub(1)
    }

    fn period(&self, i: usize) -> Period {
        self.periods.get(i).copied().unwrap_or(Period {
            start: i64::MIN,
            offset: 0,
        })
    }

    /// The UTC offset in seconds in force at `instant`.
    pub fn offset_at(&self, instant: i64) -> i64 {
        self.period(self.index_at(instant)).offset
    }

    /// The local seconds of `instant`.
    pub fn wall(&self, instant: i64) -> i64 {
        instant + self.offset_at(instant)
    }

    /// The instant where the offset next changes after `instant`, if the table
    /// knows one.
    pub fn next_change(&self, instant: i64) -> Option<i64> {
        self.periods
            .get(self.index_at(instant) + 1)
            .map(|p| p.start)
    }

    /// Resolves local seconds to an instant (RFC 5545 §3.3.5): a time in a
    /// fold takes its first occurrence; a time in a gap is read with the
    /// offset before the gap, or is dropped under [`Nonexistent::Skip`].
    pub fn resolve(&self, wall: i64, policy: Nonexistent) -> Option<i64> {
        // The earliest period whose wall range reaches past `wall`: in a
        // fold that is the first occurrence.
        let i = self.wall_ends.partition_point(|&end| end <= wall);
        let p = self.period(i);
        let start_wall = if i == 0 {
            i64::MIN
        } else {
            p.start.saturating_add(p.offset)
        };
        if wall >= start_wall {
            return Some(wall - p.offset);
        }
        // Before this period's first wall time: in the gap after the
        // previous period. Read it with the offset before the gap.
        match policy {
            Nonexistent::Skip => None,
            Nonexistent::ShiftForward => Some(wall - self.period(i.saturating_sub(1)).offset),
        }
    }

    /// Whether local seconds name a time that does not exist in this zone.
    pub fn is_nonexistent(&self, wall: i64) -> bool {
        self.resolve(wall, Nonexistent::Skip).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn wall(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        super::super::wall_of(
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap(),
        )
    }

    #[test]
    fn new_york_gap_shifts_forward_and_fold_takes_first() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let t = ZoneTable::new(tz, wall(2024, 1, 1, 0, 0), wall(2025, 1, 1, 0, 0));
        // 2024-03-10 02:30 does not exist: 03:30 EDT = 07:30Z.
        let gap = wall(2024, 3, 10, 2, 30);
        assert_eq!(
            t.resolve(gap, Nonexistent::ShiftForward),
            Some(wall(2024, 3, 10, 7, 30))
        );
        assert_eq!(t.resolve(gap, Nonexistent::Skip), None);
        // 2024-11-03 01:30 happens twice: first is EDT = 05:30Z.
        let fold = wall(2024, 11, 3, 1, 30);
        assert_eq!(
            t.resolve(fold, Nonexistent::Skip),
            Some(wall(2024, 11, 3, 5, 30))
        );
        assert_eq!(t.offset_at(wall(2024, 7, 1, 0, 0)), -4 * 3600);
        assert_eq!(t.offset_at(wall(2024, 12, 1, 0, 0)), -5 * 3600);
    }

    #[test]
    fn table_agrees_with_chrono_tz_every_hour() {
        for name in [
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "America/Santiago",
            "Asia/Kathmandu",
        ] {
            let tz: Tz = name.parse().unwrap();
            let from = wall(2026, 1, 1, 0, 0);
            let to = wall(2028, 1, 1, 0, 0);
            let t = ZoneTable::new(tz, from, to);
            let mut x = from;
            while x < to {
                assert_eq!(t.offset_at(x), offset_at(tz, x), "{name} at {x}");
                x += 1800;
            }
        }
    }

    #[test]
    fn resolve_agrees_with_chrono_tz_every_quarter_hour() {
        use chrono::{LocalResult, TimeZone};
        for name in [
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "America/Santiago",
            "Asia/Kathmandu",
        ] {
            let tz: Tz = name.parse().unwrap();
            let from = wall(2026, 1, 1, 0, 0);
            let to = wall(2028, 1, 1, 0, 0);
            let t = ZoneTable::new(tz, from - DAY, to + DAY);
            let mut w = from;
            while w < to {
                let naive = super::super::naive_of_wall(w);
                let want = match tz.from_local_datetime(&naive) {
                    LocalResult::Single(d) => Some(d.timestamp()),
                    LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
                    LocalResult::None => None,
                };
                assert_eq!(t.resolve(w, Nonexistent::Skip), want, "{name} {naive}");
                if want.is_none() {
                    // Forward by the gap: the offset of a moment well before it.
                    let before = offset_at(tz, w - 30 * 3600);
                    assert_eq!(
                        t.resolve(w, Nonexistent::ShiftForward),
                        Some(w - before),
                        "{name} {naive}"
                    );
                }
                w += 900;
            }
        }
    }
}
