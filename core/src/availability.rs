//! Open, busy and free time per resource, and the one predicate that decides
//! which starts of an appointment type a resource can take. Slot listing
//! and the booking check both run [`Evaluator::resource_starts`]: listing
//! over a window, booking over the one start.

use chrono_tz::Tz;
use medsched_storage::Nonexistent;

use crate::error::Error;
use crate::interval::{self, Span};
use crate::schedule::{Res, ResBusy, Schedule, Ty};
use crate::time::{day_of_wall, ZoneTable, DAY};

/// Most working-hour occurrences one rule may yield for one query.
const WALL_LIMIT: usize = 1_000_000;

/// Scratch space and zone tables for a run of queries over one window.
#[derive(Debug)]
pub(crate) struct Evaluator<'a> {
    _schedule: std::marker::PhantomData<&'a Schedule>,
    from: i64,
    to: i64,
    tables: Vec<ZoneTable>,
    walls: Vec<i64>,
    blocks: Vec<Span>,
    away: Vec<Span>,
    open: Vec<Span>,
    busy_merged: Vec<Span>,
    pub(crate) free: Vec<Span>,
    limited_days: Vec<i64>,
    counts: Vec<(i64, u32)>,
    /// The first expansion that failed: the answer is refused, not given
    /// without that rule's hours.
    failed: Option<Error>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator for instants in `[from, to)` (zone tables are built two
    /// days wider).
    pub(crate) fn new(_schedule: &'a Schedule, from: i64, to: i64) -> Self {
        Self {
            _schedule: std::marker::PhantomData,
            from,
            to,
            tables: Vec::new(),
            walls: Vec::new(),
            blocks: Vec::new(),
            away: Vec::new(),
            open: Vec::new(),
            busy_merged: Vec::new(),
            free: Vec::new(),
            limited_days: Vec::new(),
            counts: Vec::new(),
            failed: None,
        }
    }

    /// `Err` with the first expansion error met so far (an answer computed
    /// without a rule's hours would be wrong).
    pub(crate) fn check(&mut self) -> Result<(), Error> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Index into `self.tables` of the zone's table, built on first use.
    pub(crate) fn table_idx(&mut self, zone: Tz) -> usize {
        match self.tables.iter().position(|t| t.zone() == zone) {
            Some(p) => p,
            None => {
                self.tables
                    .push(ZoneTable::new(zone, self.from - 3 * DAY, self.to + 3 * DAY));
                self.tables.len() - 1
            }
        }
    }

    /// The zone's table.
    pub(crate) fn table(&mut self, zone: Tz) -> Option<&ZoneTable> {
        let i = self.table_idx(zone);
        self.tables.get(i)
    }

    /// Working-hour blocks of `res` (overrides applied, time off not
    /// removed) that may touch `[from, to)`, sorted and merged into `blocks`.
    fn hours(&mut self, res: &Res, from: i64, to: i64) {
        self.blocks.clear();
        let ti = self.table_idx(res.zone);
        let Some(table) = self.tables.get(ti) else {
            return;
        };
        let first_day = day_of_wall(table.wall(from)) - 1;
        let last_day = day_of_wall(table.wall(to)) + 1;
        let (from_wall, to_wall) = (first_day * DAY, (last_day + 1) * DAY);
        for rule in &res.rules {
            self.walls.clear();
            // A failed expansion is kept and reported by `check`.
            if let Err(e) = rule
                .rec
                .walls(table, from_wall, to_wall, WALL_LIMIT, &mut self.walls)
            {
                self.failed.get_or_insert(e);
                continue;
            }
            for &w in &self.walls {
                let day = day_of_wall(w);
                if has_override(res, day) {
                    continue;
                }
                let Some(start) = rule.rec.resolve_wall(table, w) else {
                    continue;
                };
                let end_wall = (day + i64::from(rule.next_day)) * DAY + rule.end_tod;
                let Some(end) = table.resolve(end_wall, Nonexistent::ShiftForward) else {
                    continue;
                };
                if end > start {
                    self.blocks.push((start, end));
                }
            }
        }
        let lo = res.overrides.partition_point(|(d, _)| *d < first_day);
        for (day, blocks) in res.overrides.get(lo..).unwrap_or_default() {
            if *day > last_day {
                break;
            }
            for b in blocks {
                let start = table.resolve(day * DAY + b.start_tod, Nonexistent::ShiftForward);
                let end = table.resolve(
                    (day + i64::from(b.next_day)) * DAY + b.end_tod,
                    Nonexistent::ShiftForward,
                );
                if let (Some(s), Some(e)) = (start, end) {
                    if e > s {
                        self.blocks.push((s, e));
                    }
                }
            }
        }
        interval::normalize(&mut self.blocks);
    }

    /// Open time of `res` in `[from, to)`: working hours less time off.
    pub(crate) fn open(&mut self, res: &Res, from: i64, to: i64) -> &[Span] {
        self.hours(res, from, to);
        self.away.clear();
        res.away_in(from, to, &mut self.away);
        self.away.sort_unstable();
        self.open.clear();
        interval::subtract(&self.blocks, &self.away, &mut self.open);
        interval::clip(&mut self.open, from, to);
        &self.open
    }

    /// Working hours only (no time off), clipped to `[from, to)`.
    pub(crate) fn hours_only(&mut self, res: &Res, from: i64, to: i64) -> Vec<Span> {
        self.hours(res, from, to);
        let mut v = self.blocks.clone();
        interval::clip(&mut v, from, to);
        v
    }

    /// Busy time of `res` within `[from, to)`: where its capacity is used up.
    pub(crate) fn busy(&mut self, rb: &ResBusy, from: i64, to: i64) -> &[Span] {
        self.busy_merged.clear();
        self.busy_merged.extend_from_slice(rb.full_in(from, to));
        interval::clip(&mut self.busy_merged, from, to);
        &self.busy_merged
    }

    /// Free time of `res` in `[from, to)` into `self.free`.
    pub(crate) fn free(&mut self, res: &Res, rb: &ResBusy, from: i64, to: i64) {
        self.open(res, from, to);
        self.free.clear();
        // `open` is clipped to the window, so the busy spans need no clipping.
        interval::subtract(&self.open, rb.full_in(from, to), &mut self.free);
    }

    /// Local days (day numbers) of `res` on which the type's per-day or
    /// per-week limit is already reached, into `self.limited_days` (sorted).
    fn limits(&mut self, rb: &ResBusy, type_idx: u32, ty: &Ty, ti: usize, from: i64, to: i64) {
        self.limited_days.clear();
        if ty.max_per_day.is_none() && ty.max_per_week.is_none() {
            return;
        }
        let Some(table) = self.tables.get(ti) else {
            return;
        };
        // Whole weeks around the window, in local days.
        let first_day = day_of_wall(table.wall(from)) - 8;
        let last_day = day_of_wall(table.wall(to)) + 8;
        self.counts.clear();
        for b in &rb.busy {
            if b.type_idx != Some(type_idx) {
                continue;
            }
            let day = day_of_wall(table.wall(b.raw_start));
            if day < first_day || day > last_day {
                continue;
            }
            match self.counts.iter_mut().find(|(d, _)| *d == day) {
                Some((_, n)) => *n += 1,
                None => self.counts.push((day, 1)),
            }
        }
        for day in first_day..=last_day {
            let on_day = self
                .counts
                .iter()
                .find(|(d, _)| *d == day)
                .map_or(0, |(_, n)| *n);
            let week = week_of_day(day);
            let in_week: u32 = self
                .counts
                .iter()
                .filter(|(d, _)| week_of_day(*d) == week)
                .map(|(_, n)| n)
                .sum();
            let day_full = ty.max_per_day.is_some_and(|m| on_day >= m);
            let week_full = ty.max_per_week.is_some_and(|m| in_week >= m);
            if day_full || week_full {
                self.limited_days.push(day);
            }
        }
    }

    /// The predicate: every start in `[from, to)` at which `res` can take an
    /// appointment of the type, given `now`. Appends ascending starts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resource_starts(
        &mut self,
        res: &Res,
        rb: &ResBusy,
        type_idx: u32,
        ty: &Ty,
        from: i64,
        to: i64,
        now: i64,
        mut out: impl FnMut(i64),
    ) {
        let mut lo = from.max(now).max(now.saturating_add(ty.notice));
        let mut hi = to;
        if let Some(h) = ty.horizon {
            hi = hi.min(now.saturating_add(h));
        }
        if lo >= hi {
            return;
        }
        // Align `lo` down is not needed: the grid walk starts at `lo`.
        lo = lo.max(from);
        hi = hi.min(to);
        let (reach_before, reach_after) = (ty.reach_before(), ty.reach_after());
        self.free(res, rb, lo - reach_before, hi + reach_after);
        let ti = self.table_idx(res.zone);
        self.limits(rb, type_idx, ty, ti, lo, hi);
        let Some(table) = self.tables.get(ti) else {
            return;
        };
        let free = &self.free;
        let limited_days = &self.limited_days;
        let mut limited = 0usize;
        for &(a, b) in free {
            let s_min = (a + reach_before).max(lo);
            let s_max = (b - reach_after).min(hi - 1);
            if s_min > s_max {
                continue;
            }
            grid_walk(table, ty, s_min, s_max, |s, day| {
                if !limited_days.is_empty() {
                    while limited_days.get(limited).is_some_and(|d| *d < day) {
                        limited += 1;
                    }
                    if limited_days.get(limited) == Some(&day) {
                        return;
                    }
                }
                out(s);
            });
        }
    }
}

/// Monday-based week number of a day number.
pub(crate) fn week_of_day(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

fn has_override(res: &Res, day: i64) -> bool {
    !res.overrides.is_empty()
        && res
            .overrides
            .binary_search_by_key(&day, |(d, _)| *d)
            .is_ok()
}

/// Whether `instant` lies on the type's grid in the zone of `table`.
pub(crate) fn on_grid(table: &ZoneTable, ty: &Ty, instant: i64) -> bool {
    let tod = table.wall(instant).rem_euclid(DAY);
    tod >= ty.align && (tod - ty.align) % ty.step == 0
}

/// Calls `f(start, local_day)` for every grid start in `[s_min, s_max]`.
fn grid_walk(table: &ZoneTable, ty: &Ty, s_min: i64, s_max: i64, mut f: impl FnMut(i64, i64)) {
    let mut t = s_min;
    while t <= s_max {
        let offset = table.offset_at(t);
        // This stretch of constant offset ends at the next change.
        let piece_end = table.next_change(t).map_or(s_max, |c| (c - 1).min(s_max));
        let (first_wall, last_wall) = (t + offset, piece_end + offset);
        let mut day = first_wall.div_euclid(DAY);
        let mut tod = first_wall - day * DAY;
        loop {
            // First grid time of day at or after `tod`.
            let k = if tod <= ty.align {
                0
            } else {
                (tod - ty.align + ty.step - 1) / ty.step
            };
            let first = day * DAY + ty.align + k * ty.step;
            let day_end = (day + 1) * DAY;
            let stop = last_wall.min(day_end - 1);
            let mut wall = first;
            while wall <= stop {
                f(wall - offset, day);
                wall += ty.step;
            }
            if day_end > last_wall {
                break;
            }
            day += 1;
            tod = 0;
        }
        t = piece_end + 1;
    }
}
