//! Recurrence sets (RFC 5545 DTSTART, RRULE, RDATE, EXDATE) on the `rrule`
//! crate, with medsched's DST policy and bounded expansion.
//!
//! Rules are expanded in *floating* wall time (the `rrule` crate is given a
//! zone without DST), then every wall time is resolved in the rule's zone by
//! [`ZoneTable::resolve`]. This one step gives the RFC 5545 §3.3.5 reading
//! and corrects the crate's known defects:
//!
//! * an RDATE equal to a generated occurrence is returned once (walls are
//!   merged and de-duplicated, then instants are de-duplicated);
//! * HOURLY/BYHOUR rules do not repeat the first instant after a gap (two
//!   walls that resolve to one instant give one occurrence);
//! * a DTSTART inside a gap is accepted (DTSTART is parsed here, not by the
//!   crate, and resolved like any other wall time);
//! * `-5MO` in a MONTHLY rule is accepted (the entry is expanded as a plain
//!   weekday and filtered here).
//!
//! COUNT and UNTIL are applied here as well, so that DTSTART counts as the
//! first occurrence (RFC 5545 §3.8.5.3) and UNTIL compares instants.

mod fast;
mod parse;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use chrono_tz::Tz;
use rrule::{Frequency, NWeekday, RRule, RRuleSet, Unvalidated};

use crate::error::Error;
use crate::time::{naive_of_wall, wall_of, Nonexistent, ZoneTable, DAY};

pub use parse::{parse_rrule_parts, ByDay, RuleParts, MAX_DATES, MAX_LIST_VALUES, MAX_RULE_BYTES};

/// Most raw steps one expansion may take before it gives up with
/// [`Error::RecurrenceTooLarge`].
pub const MAX_STEPS: usize = 2_000_000;

/// Earliest DTSTART year of a rule: every expansion walks from DTSTART, so
/// its distance from any query is bounded.
pub const MIN_YEAR: i32 = 1800;
/// Latest DTSTART year of a rule.
pub const MAX_YEAR: i32 = 2200;

/// A point in time as written in a recurrence: a local wall time (with the
/// set's zone) or a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Local wall time in the set's zone.
    Wall(NaiveDateTime),
    /// A UTC instant (seconds since the epoch).
    Utc(i64),
}

/// One RRULE of a set, split into what the crate expands and what medsched
/// applies itself.
#[derive(Debug, Clone)]
struct Rule {
    /// The rule as given, for display.
    source: String,
    /// Parsed and validated against the floating DTSTART.
    set: RRuleSet,
    count: Option<u32>,
    until: Option<Moment>,
    /// Original BYDAY of a MONTHLY or YEARLY rule that had ordinals the
    /// crate refuses (`-5MO` monthly, `-53MO` yearly); generated dates are
    /// kept only where they match one of these.
    byday_filter: Option<ByDayFilter>,
    fast: Option<fast::Simple>,
}

/// A recurrence set in one IANA zone.
#[derive(Debug, Clone)]
pub struct Recurrence {
    zone: Tz,
    dtstart: NaiveDateTime,
    date_only: bool,
    rules: Vec<Rule>,
    rdates: Vec<Moment>,
    exdates: Exdates,
    policy: Nonexistent,
}

/// The result of a bounded expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// Occurrences as instants, ascending, without duplicates.
    pub instants: Vec<i64>,
    /// Whether the expansion stopped at its limit before the window's end.
    pub truncated: bool,
}

impl Recurrence {
    /// A set with DTSTART as local wall time in `zone` and one RRULE (the
    /// text after `RRULE:`).
    ///
    /// # Errors
    ///
    /// [`Error::RruleInvalid`] when the rule cannot be read.
    pub fn new(zone: Tz, dtstart: NaiveDateTime, rrule: &str) -> Result<Self, Error> {
        let mut set = Self::single(zone, dtstart);
        set.add_rrule(rrule)?;
        Ok(set)
    }

    /// A set holding only DTSTART (one occurrence).
    pub fn single(zone: Tz, dtstart: NaiveDateTime) -> Self {
        Self {
            zone,
            dtstart,
            date_only: false,
            rules: Vec::new(),
            rdates: Vec::new(),
            exdates: Exdates::default(),
            policy: Nonexistent::ShiftForward,
        }
    }

    /// Reads iCalendar lines: `DTSTART[;TZID=..|;VALUE=DATE]:..`, `RRULE:..`,
    /// `RDATE..`, `EXDATE..` (folded lines allowed). A DTSTART without TZID
    /// and without `Z` is floating and read in `default_zone`.
    ///
    /// # Errors
    ///
    /// [`Error::RruleInvalid`] naming the line; [`Error::UnknownZone`].
    pub fn parse_ical(text: &str, default_zone: Tz) -> Result<Self, Error> {
        parse::parse_ical(text, default_zone)
    }

    /// Adds an RRULE (the text after `RRULE:`).
    ///
    /// # Errors
    ///
    /// [`Error::RruleInvalid`] when the rule cannot be read.
    pub fn add_rrule(&mut self, text: &str) -> Result<(), Error> {
        let rule = self.build_rule(text)?;
        self.rules.push(rule);
        Ok(())
    }

    /// Adds an RDATE.
    pub fn add_rdate(&mut self, at: Moment) {
        self.rdates.push(at);
    }

    /// Adds an EXDATE.
    pub fn add_exdate(&mut self, at: Moment) {
        self.add_exdates(std::iter::once(at));
    }

    /// Adds EXDATEs (sorted once, so that many EXDATEs cost n log n).
    pub fn add_exdates(&mut self, dates: impl IntoIterator<Item = Moment>) {
        self.exdates.extend(dates);
    }

    /// Adds RDATEs.
    pub fn add_rdates(&mut self, dates: impl IntoIterator<Item = Moment>) {
        self.rdates.extend(dates);
    }

    /// Number of RDATEs and EXDATEs.
    pub fn date_count(&self) -> usize {
        self.rdates.len() + self.exdates.walls.len() + self.exdates.instants.len()
    }

    /// Sets the policy for nonexistent wall times.
    pub fn with_policy(mut self, policy: Nonexistent) -> Self {
        self.policy = policy;
        self
    }

    /// The set's zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// DTSTART as local wall time.
    pub fn dtstart(&self) -> NaiveDateTime {
        self.dtstart
    }

    /// DTSTART as an instant (a nonexistent DTSTART read forward, RFC 5545).
    pub fn dtstart_instant(&self) -> i64 {
        let wall = wall_of(self.dtstart);
        ZoneTable::new(self.zone, wall - 2 * DAY, wall + 2 * DAY)
            .resolve(wall, Nonexistent::ShiftForward)
            .unwrap_or(wall)
    }

    /// The policy for nonexistent wall times.
    pub fn policy(&self) -> Nonexistent {
        self.policy
    }

    /// Whether every rule takes the fast path (simple weekly and daily rules).
    pub fn is_fast(&self) -> bool {
        self.rules.iter().all(|r| r.fast.is_some())
    }

    fn build_rule(&self, text: &str) -> Result<Rule, Error> {
        let parts = parse::parse_rrule_parts(text)?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&self.dtstart.year()) {
            return Err(Error::rrule(format!(
                "DTSTART of a rule must be from year {MIN_YEAR} to {MAX_YEAR}"
            )));
        }
        if let Some(until) = parts.until {
            let before = match until {
                Moment::Wall(naive) if self.date_only => naive.date() < self.dtstart.date(),
                Moment::Wall(naive) => naive < self.dtstart,
                Moment::Utc(t) => t < self.dtstart_instant(),
            };
            if before {
                return Err(Error::rrule("UNTIL is before DTSTART"));
            }
        }
        let floating = floating(self.dtstart)?;
        // The text is rebuilt from validated values; a refusal by the crate
        // is reported without its message (which quotes the rule).
        let unsupported = || Error::rrule("the rule's combination of parts is not supported");
        let mut rrule: RRule<Unvalidated> = parts.crate_text.parse().map_err(|_| unsupported())?;
        let freq = rrule.get_freq();
        // The crate's own ordinal ranges: monthly -4..=5, yearly -52..=53.
        let crate_min: i16 = if freq == Frequency::Monthly { -4 } else { -52 };
        let byday_filter = if matches!(freq, Frequency::Monthly | Frequency::Yearly)
            && rrule
                .get_by_weekday()
                .iter()
                .any(|d| matches!(d, NWeekday::Nth(n, _) if *n < crate_min))
        {
            if !rrule.get_by_set_pos().is_empty() {
                return Err(Error::rrule(
                    "a `BYDAY` ordinal beyond -4 (monthly) or -52 (yearly) with BYSETPOS is not supported",
                ));
            }
            let original = rrule.get_by_weekday().to_vec();
            let relaxed: Vec<NWeekday> = original
                .iter()
                .map(|d| match d {
                    NWeekday::Nth(n, w) if *n < crate_min => NWeekday::Every(*w),
                    other => *other,
                })
                .collect();
            rrule = rrule.by_weekday(relaxed);
            Some(ByDayFilter {
                byday: original,
                in_month: freq == Frequency::Monthly || parts.has_bymonth,
            })
        } else {
            None
        };
        let set = rrule.build(floating).map_err(|_| unsupported())?;
        let fast = fast::Simple::from_parts(&parts, self.dtstart);
        Ok(Rule {
            source: text.trim().to_owned(),
            set: set.limit(),
            count: parts.count,
            until: parts.until,
            byday_filter,
            fast,
        })
    }

    /// Occurrence wall times in `[from_wall, to_wall)`, ascending and
    /// distinct: DTSTART, the rules' occurrences (each bounded by its COUNT
    /// and UNTIL) and the RDATEs, less the EXDATEs. Stops after `limit`
    /// walls and reports it.
    ///
    /// # Errors
    ///
    /// [`Error::RecurrenceTooLarge`] when reaching the window takes more
    /// than [`MAX_STEPS`] raw steps.
    pub fn walls(
        &self,
        table: &ZoneTable,
        from_wall: i64,
        to_wall: i64,
        limit: usize,
        out: &mut Vec<i64>,
    ) -> Result<bool, Error> {
        self.walls_with(table, from_wall, to_wall, limit, out, true)
    }

    /// Like [`Recurrence::walls`] but never takes the fast path; tests use
    /// it to prove the fast path exact.
    ///
    /// # Errors
    ///
    /// As [`Recurrence::walls`].
    pub fn walls_general(
        &self,
        table: &ZoneTable,
        from_wall: i64,
        to_wall: i64,
        limit: usize,
        out: &mut Vec<i64>,
    ) -> Result<bool, Error> {
        self.walls_with(table, from_wall, to_wall, limit, out, false)
    }

    fn walls_with(
        &self,
        table: &ZoneTable,
        from_wall: i64,
        to_wall: i64,
        limit: usize,
        out: &mut Vec<i64>,
        allow_fast: bool,
    ) -> Result<bool, Error> {
        let start_len = out.len();
        let dtstart = wall_of(self.dtstart);
        if dtstart >= from_wall && dtstart < to_wall {
            out.push(dtstart);
        }
        // One step budget for the whole set, on every path.
        let mut steps = 0usize;
        for rule in &self.rules {
            let until = rule.until.map(|u| self.until_wall(table, u));
            let span = Span {
                from_wall,
                to_wall,
                until,
                limit,
            };
            match (&rule.fast, allow_fast) {
                (Some(simple), true) => simple.walls(&span, &mut steps, out)?,
                _ => self.rule_walls(rule, &span, &mut steps, out)?,
            }
        }
        for r in &self.rdates {
            let w = self.moment_wall(table, *r);
            if w >= from_wall && w < to_wall {
                out.push(w);
            }
        }
        let tail = out.get_mut(start_len..).unwrap_or_default();
        tail.sort_unstable();
        let exdates = &self.exdates;
        let mut kept = start_len;
        for i in start_len..out.len() {
            let Some(&w) = out.get(i) else { break };
            if kept > start_len && out.get(kept - 1) == Some(&w) {
                continue;
            }
            if exdates.removes(table, w) {
                continue;
            }
            if let Some(slot) = out.get_mut(kept) {
                *slot = w;
            }
            kept += 1;
        }
        out.truncate(kept);
        let truncated = out.len() - start_len > limit;
        if truncated {
            out.truncate(start_len + limit);
        }
        Ok(truncated)
    }

    fn rule_walls(
        &self,
        rule: &Rule,
        span: &Span,
        steps: &mut usize,
        out: &mut Vec<i64>,
    ) -> Result<(), Error> {
        let dtstart = wall_of(self.dtstart);
        // Under `skip`, a generated time that does not exist is not an
        // occurrence and does not count toward COUNT (RFC 5545 §3.3.10);
        // telling needs the zone from DTSTART on.
        let gaps = (rule.count.is_some() && self.policy == Nonexistent::Skip).then(|| {
            ZoneTable::new(
                self.zone,
                dtstart.saturating_sub(2 * DAY),
                span.to_wall.saturating_add(2 * DAY),
            )
        });
        // DTSTART is the first occurrence and counts toward COUNT.
        let mut counted: u64 = 1;
        let mut emitted = 0usize;
        for dt in &rule.set {
            *steps += 1;
            if *steps > MAX_STEPS {
                return Err(Error::RecurrenceTooLarge { limit: MAX_STEPS });
            }
            let w = wall_of(dt.naive_local());
            if w >= span.to_wall || span.until.is_some_and(|u| w > u) {
                break;
            }
            if let Some(filter) = &rule.byday_filter {
                if !filter.matches(dt.naive_local().date()) {
                    continue;
                }
            }
            if w == dtstart {
                continue;
            }
            if gaps.as_ref().is_some_and(|t| t.is_nonexistent(w)) {
                continue;
            }
            if let Some(count) = rule.count {
                if counted >= u64::from(count) {
                    break;
                }
            }
            counted += 1;
            if w >= span.from_wall {
                out.push(w);
                emitted += 1;
                if emitted > span.limit {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The instant of an occurrence's wall time under the set's policy;
    /// DTSTART itself is always kept (a nonexistent DTSTART is read with
    /// the offset before the gap, whatever the policy).
    pub fn resolve_wall(&self, table: &ZoneTable, wall: i64) -> Option<i64> {
        if wall == wall_of(self.dtstart) {
            table.resolve(wall, Nonexistent::ShiftForward)
        } else {
            table.resolve(wall, self.policy)
        }
    }

    fn until_wall(&self, table: &ZoneTable, until: Moment) -> i64 {
        match until {
            Moment::Wall(naive) if self.date_only => wall_of(naive) + DAY - 1,
            other => self.moment_wall(table, other),
        }
    }

    fn moment_wall(&self, table: &ZoneTable, m: Moment) -> i64 {
        match m {
            Moment::Wall(naive) => wall_of(naive),
            Moment::Utc(t) => table.wall(t),
        }
    }

    /// Occurrences as instants in `[from, to)` under the set's DST policy,
    /// at most `limit` of them.
    ///
    /// # Errors
    ///
    /// [`Error::RecurrenceTooLarge`] as for [`Recurrence::walls`];
    /// [`Error::EndBeforeStart`] when `to <= from`.
    pub fn expand(&self, from: i64, to: i64, limit: usize) -> Result<Expansion, Error> {
        if to <= from {
            return Err(Error::EndBeforeStart {
                what: "expansion window".into(),
            });
        }
        let table = ZoneTable::new(self.zone, from - 2 * DAY, to + 2 * DAY);
        let mut walls = Vec::new();
        // Walls within a day and a half of the window may resolve into it.
        let wall_truncated = self.walls(
            &table,
            from.saturating_sub(2 * DAY),
            to.saturating_add(2 * DAY),
            limit.saturating_add(1024),
            &mut walls,
        )?;
        let mut instants: Vec<i64> = walls
            .iter()
            .filter_map(|&w| self.resolve_wall(&table, w))
            .filter(|t| *t >= from && *t < to)
            .collect();
        instants.sort_unstable();
        instants.dedup();
        let truncated = wall_truncated || instants.len() > limit;
        instants.truncate(limit);
        Ok(Expansion {
            instants,
            truncated,
        })
    }

    /// The rules as given, for display.
    pub fn rule_texts(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.source.as_str())
    }
}

fn floating(dtstart: NaiveDateTime) -> Result<chrono::DateTime<rrule::Tz>, Error> {
    use chrono::TimeZone;
    rrule::Tz::UTC
        .from_local_datetime(&dtstart)
        .single()
        .ok_or_else(|| Error::rrule("dtstart out of range"))
}

fn weekday_index(w: Weekday) -> u32 {
    w.num_days_from_monday()
}

/// The BYDAY entries of a rule whose ordinals the crate refuses; dates are
/// generated for the plain weekdays and filtered here.
#[derive(Debug, Clone)]
struct ByDayFilter {
    byday: Vec<NWeekday>,
    /// Ordinals count within the month (MONTHLY, or YEARLY with BYMONTH),
    /// else within the year.
    in_month: bool,
}

impl ByDayFilter {
    /// Whether a date matches one of the entries.
    fn matches(&self, date: NaiveDate) -> bool {
        let (day, len) = if self.in_month {
            (date.day() as i32, days_in_month(date) as i32)
        } else {
            let len = if date.leap_year() { 366 } else { 365 };
            (date.ordinal() as i32, len)
        };
        self.byday.iter().any(|d| match d {
            NWeekday::Every(w) => weekday_index(*w) == weekday_index(date.weekday()),
            NWeekday::Nth(n, w) => {
                weekday_index(*w) == weekday_index(date.weekday())
                    && if *n > 0 {
                        (day - 1) / 7 + 1 == i32::from(*n)
                    } else {
                        (len - day) / 7 + 1 == -i32::from(*n)
                    }
            }
        })
    }
}

/// A set's EXDATEs for one expansion: an occurrence is removed when its
/// resolved instant equals an EXDATE's, so an EXDATE of 03:00 EDT removes
/// the 02:00 occurrence that a spring-forward gap moved to 03:00 EDT.
#[derive(Debug, Clone, Default)]
struct Exdates {
    /// EXDATEs given as wall times, sorted.
    walls: Vec<i64>,
    /// EXDATEs given as instants, sorted.
    instants: Vec<i64>,
}

impl Exdates {
    fn extend(&mut self, dates: impl IntoIterator<Item = Moment>) {
        for e in dates {
            match e {
                Moment::Wall(n) => self.walls.push(wall_of(n)),
                Moment::Utc(t) => self.instants.push(t),
            }
        }
        if !self.walls.is_sorted() {
            self.walls.sort_unstable();
        }
        if !self.instants.is_sorted() {
            self.instants.sort_unstable();
        }
    }

    fn removes(&self, table: &ZoneTable, wall: i64) -> bool {
        if self.walls.is_empty() && self.instants.is_empty() {
            return false;
        }
        let Some(at) = table.resolve(wall, Nonexistent::ShiftForward) else {
            return false;
        };
        if self.instants.binary_search(&at).is_ok() {
            return true;
        }
        // A wall EXDATE resolves within a day of its own wall time (the
        // widest gap on record is a skipped day).
        let reach = DAY + 3 * 3600;
        let lo = self.walls.partition_point(|&e| e < wall - reach);
        self.walls
            .get(lo..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&e| e <= wall + reach)
            .any(|&e| table.resolve(e, Nonexistent::ShiftForward) == Some(at))
    }
}

/// The bounds of one rule's expansion.
struct Span {
    from_wall: i64,
    to_wall: i64,
    until: Option<i64>,
    limit: usize,
}

fn days_in_month(date: NaiveDate) -> u32 {
    let (y, m) = (date.year(), date.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(31, |d| d.day())
}

/// The civil date-time of local seconds (re-exported for callers of
/// [`Recurrence::walls`]).
pub fn wall_to_naive(wall: i64) -> NaiveDateTime {
    naive_of_wall(wall)
}

#[cfg(test)]
mod tests;
