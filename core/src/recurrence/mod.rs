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

pub use parse::parse_rrule_parts;

/// Most raw steps one expansion may take before it gives up with
/// [`Error::RecurrenceTooLarge`].
pub const MAX_STEPS: usize = 2_000_000;

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
    /// Original BYDAY of a MONTHLY rule that had entries the crate refuses;
    /// generated dates are kept only where they match one of these.
    monthly_byday: Option<Vec<NWeekday>>,
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
    exdates: Vec<Moment>,
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
            exdates: Vec::new(),
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
        self.exdates.push(at);
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
        let floating = floating(self.dtstart)?;
        let mut rrule: RRule<Unvalidated> = parts
            .crate_text
            .parse()
            .map_err(|e: rrule::RRuleError| crate_error(&e))?;
        let monthly_byday = if rrule.get_freq() == Frequency::Monthly
            && rrule
                .get_by_weekday()
                .iter()
                .any(|d| matches!(d, NWeekday::Nth(n, _) if *n < -4 || *n > 5))
        {
            if !rrule.get_by_set_pos().is_empty() {
                return Err(Error::rrule(
                    "a monthly BYDAY of `-5` or `5` with BYSETPOS is not supported",
                ));
            }
            let original = rrule.get_by_weekday().to_vec();
            let relaxed: Vec<NWeekday> = original
                .iter()
                .map(|d| match d {
                    NWeekday::Nth(n, w) if *n < -4 || *n > 5 => NWeekday::Every(*w),
                    other => *other,
                })
                .collect();
            rrule = rrule.by_weekday(relaxed);
            Some(original)
        } else {
            None
        };
        let set = rrule.build(floating).map_err(|e| crate_error(&e))?;
        let fast = fast::Simple::from_parts(&parts, self.dtstart);
        Ok(Rule {
            source: text.trim().to_owned(),
            set: set.limit(),
            count: parts.count,
            until: parts.until,
            monthly_byday,
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
        for rule in &self.rules {
            let until = rule.until.map(|u| self.until_wall(table, u));
            match (&rule.fast, allow_fast) {
                (Some(simple), true) => {
                    simple.walls(from_wall, to_wall, until, out);
                }
                _ => self.rule_walls(rule, from_wall, to_wall, until, limit, out)?,
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
        let mut kept = start_len;
        for i in start_len..out.len() {
            let Some(&w) = out.get(i) else { break };
            if kept > start_len && out.get(kept - 1) == Some(&w) {
                continue;
            }
            if self
                .exdates
                .iter()
                .any(|e| self.moment_wall(table, *e) == w)
            {
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
        from_wall: i64,
        to_wall: i64,
        until: Option<i64>,
        limit: usize,
        out: &mut Vec<i64>,
    ) -> Result<(), Error> {
        let dtstart = wall_of(self.dtstart);
        // DTSTART is the first occurrence and counts toward COUNT.
        let mut counted: u64 = 1;
        let mut emitted = 0usize;
        let mut steps = 0usize;
        for dt in &rule.set {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Error::RecurrenceTooLarge { limit: MAX_STEPS });
            }
            let w = wall_of(dt.naive_local());
            if w >= to_wall || until.is_some_and(|u| w > u) {
                break;
            }
            if let Some(filter) = &rule.monthly_byday {
                if !matches_monthly(filter, dt.naive_local().date()) {
                    continue;
                }
            }
            if w == dtstart {
                continue;
            }
            if let Some(count) = rule.count {
                if counted >= u64::from(count) {
                    break;
                }
            }
            counted += 1;
            if w >= from_wall {
                out.push(w);
                emitted += 1;
                if emitted > limit {
                    break;
                }
            }
        }
        Ok(())
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
            .filter_map(|&w| table.resolve(w, self.policy))
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

/// The `rrule` crate's error by its category only: its message quotes the
/// rule's text, unbounded.
fn crate_error(e: &rrule::RRuleError) -> Error {
    Error::rrule(match e {
        rrule::RRuleError::ParserError(_) => "a part of the rule cannot be read",
        rrule::RRuleError::ValidationError(_) => {
            "a value of the rule is out of range or inconsistent"
        }
        _ => "the rule cannot be expanded",
    })
}

fn weekday_index(w: Weekday) -> u32 {
    w.num_days_from_monday()
}

/// Whether a date matches one of a MONTHLY rule's BYDAY entries.
fn matches_monthly(byday: &[NWeekday], date: NaiveDate) -> bool {
    let day = date.day() as i32;
    let dim = days_in_month(date) as i32;
    byday.iter().any(|d| match d {
        NWeekday::Every(w) => weekday_index(*w) == weekday_index(date.weekday()),
        NWeekday::Nth(n, w) => {
            weekday_index(*w) == weekday_index(date.weekday())
                && if *n > 0 {
                    (day - 1) / 7 + 1 == i32::from(*n)
                } else {
                    (dim - day) / 7 + 1 == -i32::from(*n)
                }
        }
    })
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
