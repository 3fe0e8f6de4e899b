//! Why a start is or is not bookable: typed reasons for one resource, and
//! conflict reports for a proposed appointment or a recurring series.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use medsched_storage::Severity;
use serde::{Deserialize, Serialize};

use crate::document::echo_id;

use crate::availability::{on_grid, week_of_day, Evaluator};
use crate::error::{Error, RecordKind};
use crate::interval;
use crate::recurrence::Recurrence;
use crate::schedule::{Res, Schedule, Ty};
use crate::slots::assign;
use crate::time::{date_of_day, day_of_wall, utc_of, ZoneTable, DAY};

/// Why one resource cannot take an appointment at one start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The resource is not in any requirement group of the type.
    NotEligible,
    /// The start is not on the type's local grid.
    NotOnGrid {
        /// Step in minutes.
        step_min: i64,
        /// Offset from local midnight in minutes.
        align_offset_min: i64,
    },
    /// The start is before now.
    InPast,
    /// The start is sooner than the minimum notice allows.
    Notice {
        /// Earliest allowed start.
        earliest: DateTime<Utc>,
    },
    /// The start is further ahead than the booking horizon.
    Horizon {
        /// Starts must be before this.
        latest: DateTime<Utc>,
    },
    /// The appointment with its buffers is not inside working hours.
    OutsideHours,
    /// It overlaps time off.
    TimeOff {
        /// The time-off id.
        id: String,
    },
    /// It overlaps another appointment's own time.
    Overlap {
        /// The other appointment.
        appointment: String,
    },
    /// It overlaps another appointment only through a buffer (its own or the
    /// other's).
    Buffer {
        /// The other appointment.
        appointment: String,
    },
    /// A resource of capacity above one is full.
    Capacity {
        /// The capacity.
        capacity: u32,
        /// The appointments that fill it.
        appointments: Vec<String>,
    },
    /// The per-day limit of this type is reached on that local date.
    DailyLimit {
        /// The limit.
        limit: u32,
        /// The resource's local date.
        date: NaiveDate,
    },
    /// The per-week limit of this type is reached in that local ISO week.
    WeeklyLimit {
        /// The limit.
        limit: u32,
        /// The Monday of the week.
        week_of: NaiveDate,
    },
    /// The patient already has an appointment at that time.
    PatientOverlap {
        /// The patient's other appointment.
        appointment: String,
    },
    /// Another occurrence of the same series takes this time.
    SeriesOverlap {
        /// The start of the other occurrence.
        other_start: DateTime<Utc>,
    },
}

impl Reason {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotEligible => "not_eligible",
            Reason::NotOnGrid { .. } => "not_on_grid",
            Reason::InPast => "in_past",
            Reason::Notice { .. } => "notice",
            Reason::Horizon { .. } => "horizon",
            Reason::OutsideHours => "outside_hours",
            Reason::TimeOff { .. } => "time_off",
            Reason::Overlap { .. } => "overlap",
            Reason::Buffer { .. } => "buffer",
            Reason::Capacity { .. } => "capacity",
            Reason::DailyLimit { .. } => "daily_limit",
            Reason::WeeklyLimit { .. } => "weekly_limit",
            Reason::PatientOverlap { .. } => "patient_overlap",
            Reason::SeriesOverlap { .. } => "series_overlap",
        }
    }

    /// Every reason code, for documentation and binding tests.
    pub const CODES: &'static [&'static str] = &[
        "not_eligible",
        "not_on_grid",
        "in_past",
        "notice",
        "horizon",
        "outside_hours",
        "time_off",
        "overlap",
        "buffer",
        "capacity",
        "daily_limit",
        "weekly_limit",
        "patient_overlap",
        "series_overlap",
    ];

    /// A one-line human account.
    pub fn describe(&self) -> String {
        match self {
            Reason::NotEligible => "the resource cannot serve this appointment type".into(),
            Reason::NotOnGrid {
                step_min,
                align_offset_min,
            } => format!("not on the {step_min}-minute local grid (offset {align_offset_min} min)"),
            Reason::InPast => "the start is in the past".into(),
            Reason::Notice { earliest } => {
                format!("too short notice: earliest start is {}", fmt(earliest))
            }
            Reason::Horizon { latest } => format!(
                "beyond the booking horizon: starts must be before {}",
                fmt(latest)
            ),
            Reason::OutsideHours => "outside working hours (buffers included)".into(),
            Reason::TimeOff { id } => format!("overlaps time off `{}`", echo_id(id)),
            Reason::Overlap { appointment } => {
                format!("overlaps appointment `{}`", echo_id(appointment))
            }
            Reason::Buffer { appointment } => {
                format!("buffer overlaps appointment `{}`", echo_id(appointment))
            }
            Reason::Capacity {
                capacity,
                appointments,
            } => format!(
                "capacity {capacity} used by appointments {}",
                appointments.join(", ")
            ),
            Reason::DailyLimit { limit, date } => {
                format!("daily limit of {limit} reached on {date}")
            }
            Reason::WeeklyLimit { limit, week_of } => {
                format!("weekly limit of {limit} reached in the week of {week_of}")
            }
            Reason::PatientOverlap { appointment } => {
                format!(
                    "the patient already has appointment `{}` at that time",
                    echo_id(appointment)
                )
            }
            Reason::SeriesOverlap { other_start } => {
                format!("overlaps the series occurrence at {}", fmt(other_start))
            }
        }
    }
}

fn fmt(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Whether one resource can take one start, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The resource.
    pub resource: String,
    /// The start.
    pub start: DateTime<Utc>,
    /// The end (start plus duration).
    pub end: DateTime<Utc>,
    /// Whether a booking would succeed on this resource.
    pub bookable: bool,
    /// Blocking reasons; empty when bookable.
    pub reasons: Vec<Reason>,
    /// Non-blocking findings (a patient overlap under `warn`).
    pub warnings: Vec<Reason>,
}

impl Schedule {
    /// Why `resource` can or cannot take an appointment of `type_id` at
    /// `start`, seen at `now`; with a patient, their overlaps too.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown type or resource.
    pub fn explain(
        &self,
        type_id: &str,
        resource: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        patient: Option<&str>,
    ) -> Result<Explanation, Error> {
        let t = self.type_idx(type_id)?;
        let r = self.resource_idx(resource)?;
        let ty = self
            .ty(t)
            .ok_or_else(|| Error::not_found(RecordKind::AppointmentType, type_id))?;
        let res = self
            .res(r)
            .ok_or_else(|| Error::not_found(RecordKind::Resource, resource))?;
        let s = start.timestamp();
        let mut ev = Evaluator::new(
            self,
            s - ty.reach_before() - 8 * DAY,
            s + ty.reach_after() + 8 * DAY,
        );
        let mut reasons = self.reasons(&mut ev, r, res, t, ty, s, now.timestamp());
        ev.check()?;
        // The verdict is the listing predicate's; the reasons explain it.
        let mut bookable = self.predicate(r, t, s, now.timestamp())?;
        let mut warnings = Vec::new();
        if let Some(p) = patient {
            let found = self.patient_overlaps(p, s, s + ty.duration, None);
            match self.settings.patient_overlap {
                Severity::Block => {
                    bookable &= found.is_empty();
                    reasons.extend(found);
                }
                Severity::Warn => warnings.extend(found),
            }
        }
        Ok(Explanation {
            resource: res.id.clone(),
            start: utc_of(s),
            end: utc_of(s + ty.duration),
            bookable,
            reasons,
            warnings,
        })
    }

    /// Whether the listing predicate admits `start` for this resource; the
    /// same code that lists slots, run over the one start.
    ///
    /// # Errors
    ///
    /// [`Error::RecurrenceTooLarge`] when working hours cannot be expanded.
    pub(crate) fn predicate(&self, r: u32, t: u32, s: i64, now: i64) -> Result<bool, Error> {
        let (Some(res), Some(ty)) = (self.res(r), self.ty(t)) else {
            return Ok(false);
        };
        if !ty.groups.iter().any(|g| g.members.contains(&r)) {
            return Ok(false);
        }
        let mut ev = Evaluator::new(
            self,
            s - ty.reach_before() - DAY,
            s + ty.reach_after() + DAY,
        );
        let mut admitted = false;
        ev.resource_starts(res, self.busy_of(r), t, ty, s, s + 1, now, |x| {
            admitted |= x == s
        });
        ev.check()?;
        Ok(admitted)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reasons(
        &self,
        ev: &mut Evaluator<'_>,
        r: u32,
        res: &Res,
        t: u32,
        ty: &Ty,
        s: i64,
        now: i64,
    ) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if !ty.groups.iter().any(|g| g.members.contains(&r)) {
            reasons.push(Reason::NotEligible);
        }
        let table: ZoneTable = match ev.table(res.zone) {
            Some(t) => t.clone(),
            None => ZoneTable::new(res.zone, s - 3 * DAY, s + 3 * DAY),
        };
        if !on_grid(&table, ty, s) {
            reasons.push(Reason::NotOnGrid {
                step_min: ty.step / 60,
                align_offset_min: ty.align / 60,
            });
        }
        if s < now {
            reasons.push(Reason::InPast);
        } else if s < now.saturating_add(ty.notice) {
            reasons.push(Reason::Notice {
                earliest: utc_of(now + ty.notice),
            });
        }
        if let Some(h) = ty.horizon {
            if s >= now.saturating_add(h) {
                reasons.push(Reason::Horizon {
                    latest: utc_of(now + h),
                });
            }
        }
        let (need_start, need_end) = (s - ty.reach_before(), s + ty.reach_after());
        let hours = ev.hours_only(res, need_start - DAY, need_end + DAY);
        if !interval::covers(&hours, need_start, need_end) {
            reasons.push(Reason::OutsideHours);
        }
        for a in res.away_lists().into_iter().flatten() {
            if a.start < need_end && a.end > need_start {
                let id = self
                    .time_off_ids
                    .get(a.index as usize)
                    .cloned()
                    .unwrap_or_default();
                if !reasons
                    .iter()
                    .any(|x| matches!(x, Reason::TimeOff { id: i } if *i == id))
                {
                    reasons.push(Reason::TimeOff { id });
                }
            }
        }
        let rb = self.busy_of(r);
        let overlapping: Vec<_> = rb
            .busy
            .iter()
            .filter(|b| b.start < need_end && b.end > need_start)
            .collect();
        if res.capacity <= 1 {
            for b in &overlapping {
                let id = self.appointment_id(b.appointment);
                if b.raw_start < s + ty.duration && b.raw_end > s {
                    reasons.push(Reason::Overlap { appointment: id });
                } else {
                    reasons.push(Reason::Buffer { appointment: id });
                }
            }
        } else {
            let spans: Vec<_> = overlapping.iter().map(|b| (b.start, b.end)).collect();
            let (mut events, mut full) = (Vec::new(), Vec::new());
            interval::at_least(&spans, res.capacity, &mut events, &mut full);
            if full.iter().any(|f| f.0 < need_end && f.1 > need_start) {
                reasons.push(Reason::Capacity {
                    capacity: res.capacity,
                    appointments: overlapping
                        .iter()
                        .map(|b| self.appointment_id(b.appointment))
                        .collect(),
                });
            }
        }
        if ty.max_per_day.is_some() || ty.max_per_week.is_some() {
            let day = day_of_wall(table.wall(s));
            let week = week_of_day(day);
            let (mut on_day, mut in_week) = (0u32, 0u32);
            for b in &rb.busy {
                if b.type_idx != Some(t) {
                    continue;
                }
                let d = day_of_wall(table.wall(b.raw_start));
                if d == day {
                    on_day += 1;
                }
                if week_of_day(d) == week {
                    in_week += 1;
                }
            }
            if let Some(limit) = ty.max_per_day.filter(|m| on_day >= *m) {
                reasons.push(Reason::DailyLimit {
                    limit,
                    date: date_of_day(day),
                });
            }
            if let Some(limit) = ty.max_per_week.filter(|m| in_week >= *m) {
                reasons.push(Reason::WeeklyLimit {
                    limit,
                    week_of: date_of_day(week * 7 - 3),
                });
            }
        }
        reasons
    }

    /// The patient's holding appointments that overlap `[start, end)`.
    pub(crate) fn patient_overlaps(
        &self,
        patient: &str,
        start: i64,
        end: i64,
        except: Option<u64>,
    ) -> Vec<Reason> {
        self.book
            .patient_busy
            .get(patient)
            .map(|v| {
                v.iter()
                    .filter(|(s, e, i)| *s < end && *e > start && Some(*i) != except)
                    .map(|(_, _, i)| Reason::PatientOverlap {
                        appointment: self.appointment_id(*i),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A proposed appointment for a conflict check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Appointment type id.
    #[serde(rename = "type")]
    pub type_id: String,
    /// The start.
    pub start: DateTime<Utc>,
    /// Resources chosen; when empty, any resources that fit are chosen.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The patient, for patient-side overlaps.
    #[serde(default)]
    pub patient: Option<String>,
}

/// A proposed recurring series: every occurrence of a rule, each with the
/// type's duration, on the same resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesProposal {
    /// Appointment type id.
    #[serde(rename = "type")]
    pub type_id: String,
    /// IANA zone of the wall times.
    pub zone: String,
    /// First occurrence as local wall time.
    pub dtstart: NaiveDateTime,
    /// RFC 5545 RRULE value; must be bounded by COUNT or UNTIL, or the
    /// occurrence limit applies.
    pub rrule: String,
    /// Resources chosen; when empty, each occurrence may take any that fit.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The patient.
    #[serde(default)]
    pub patient: Option<String>,
}

/// A conflict check's result for one start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceReport {
    /// The start.
    pub start: DateTime<Utc>,
    /// The end.
    pub end: DateTime<Utc>,
    /// Whether it can be booked as proposed.
    pub bookable: bool,
    /// The resources a booking would take, when bookable.
    pub assigned: Vec<String>,
    /// Blocking reasons per resource (the chosen ones, or every candidate
    /// when none could be assigned).
    pub conflicts: Vec<ResourceConflicts>,
    /// Patient overlaps and other findings that do not block.
    pub warnings: Vec<Reason>,
    /// Patient overlaps that block.
    pub patient_conflicts: Vec<Reason>,
}

/// Reasons for one resource, or for the proposal as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceConflicts {
    /// The resource id; `None` for a conflict of the whole proposal (the
    /// chosen resources do not fill the groups, or series occurrences
    /// overlap each other).
    pub resource: Option<String>,
    /// Why it cannot take the start.
    pub reasons: Vec<Reason>,
}

/// The conflict check of a series, per occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesReport {
    /// One report per occurrence, ascending.
    pub occurrences: Vec<OccurrenceReport>,
    /// Whether the occurrence limit cut the series.
    pub truncated: bool,
}

impl SeriesReport {
    /// Whether every occurrence can be booked (the all-or-nothing test).
    pub fn all_bookable(&self) -> bool {
        self.occurrences.iter().all(|o| o.bookable)
    }
}

/// Most occurrences one series check covers.
pub const MAX_SERIES_OCCURRENCES: usize = 1000;

impl Schedule {
    /// Checks a proposed appointment against everything known.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown type or resource.
    pub fn check(&self, p: &Proposal, now: DateTime<Utc>) -> Result<OccurrenceReport, Error> {
        let t = self.type_idx(&p.type_id)?;
        let mut chosen = Vec::with_capacity(p.resources.len());
        for id in &p.resources {
            chosen.push(self.resource_idx(id)?);
        }
        self.check_at(
            t,
            &chosen,
            p.patient.as_deref(),
            p.start.timestamp(),
            now.timestamp(),
        )
    }

    fn check_at(
        &self,
        t: u32,
        chosen: &[u32],
        patient: Option<&str>,
        s: i64,
        now: i64,
    ) -> Result<OccurrenceReport, Error> {
        let ty = self
            .ty(t)
            .ok_or_else(|| Error::invalid("type", "unknown"))?;
        let mut ev = Evaluator::new(
            self,
            s - ty.reach_before() - 8 * DAY,
            s + ty.reach_after() + 8 * DAY,
        );
        let candidates: Vec<u32> = if chosen.is_empty() {
            let mut c: Vec<u32> = ty
                .groups
                .iter()
                .flat_map(|g| g.members.iter().copied())
                .collect();
            c.sort_unstable();
            c.dedup();
            c
        } else {
            chosen.to_vec()
        };
        let mut free = Vec::new();
        let mut conflicts = Vec::new();
        for &r in &candidates {
            let Some(res) = self.res(r) else { continue };
            if self.predicate(r, t, s, now)? {
                free.push(r);
            } else {
                let reasons = self.reasons(&mut ev, r, res, t, ty, s, now);
                conflicts.push(ResourceConflicts {
                    resource: Some(res.id.clone()),
                    reasons,
                });
            }
        }
        ev.check()?;
        let assignment = if chosen.is_empty() {
            assign(ty, &free, None)
        } else if conflicts.is_empty() {
            // The chosen resources must fill every group exactly.
            assign(ty, &free, None)
                .filter(|g| g.iter().map(Vec::len).sum::<usize>() == chosen.len())
        } else {
            None
        };
        let (mut warnings, mut patient_conflicts) = (Vec::new(), Vec::new());
        if let Some(p) = patient {
            let found = self.patient_overlaps(p, s, s + ty.duration, None);
            match self.settings.patient_overlap {
                Severity::Block => patient_conflicts = found,
                Severity::Warn => warnings = found,
            }
        }
        let assigned: Vec<String> = assignment
            .iter()
            .flatten()
            .flatten()
            .filter_map(|r| self.resource_id(*r).map(str::to_owned))
            .collect();
        if assignment.is_some() {
            conflicts.clear();
        } else if conflicts.is_empty() {
            // Every named resource is free, but they do not meet the
            // requirement groups.
            conflicts.push(ResourceConflicts {
                resource: None,
                reasons: vec![Reason::NotEligible],
            });
        }
        Ok(OccurrenceReport {
            start: utc_of(s),
            end: utc_of(s + ty.duration),
            bookable: assignment.is_some() && patient_conflicts.is_empty(),
            assigned,
            conflicts,
            warnings,
            patient_conflicts,
        })
    }

    /// Checks every occurrence of a proposed series (at most
    /// [`MAX_SERIES_OCCURRENCES`]), including occurrences that overlap one
    /// another.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::UnknownZone`], [`Error::RruleInvalid`],
    /// [`Error::RecurrenceTooLarge`].
    pub fn check_series(
        &self,
        p: &SeriesProposal,
        now: DateTime<Utc>,
    ) -> Result<SeriesReport, Error> {
        let t = self.type_idx(&p.type_id)?;
        let ty = self
            .ty(t)
            .ok_or_else(|| Error::invalid("type", "unknown"))?;
        let mut chosen = Vec::with_capacity(p.resources.len());
        for id in &p.resources {
            chosen.push(self.resource_idx(id)?);
        }
        let zone = crate::time::parse_zone(&p.zone)?;
        let rec = Recurrence::new(zone, p.dtstart, &p.rrule)?;
        let from = crate::time::resolve_naive(
            zone,
            p.dtstart,
            medsched_storage::Nonexistent::ShiftForward,
        )
        .unwrap_or_default()
            - DAY;
        let to = from + crate::slots::MAX_WINDOW_DAYS * 5 * DAY;
        let exp = rec.expand(from, to, MAX_SERIES_OCCURRENCES)?;
        let mut occurrences = Vec::with_capacity(exp.instants.len());
        for (k, &s) in exp.instants.iter().enumerate() {
            let mut rep = self.check_at(t, &chosen, p.patient.as_deref(), s, now.timestamp())?;
            // Occurrences of the series against one another.
            let mut series = Vec::new();
            for (j, &o) in exp.instants.iter().enumerate() {
                if j != k
                    && o - ty.reach_before() < s + ty.reach_after()
                    && o + ty.reach_after() > s - ty.reach_before()
                {
                    series.push(Reason::SeriesOverlap {
                        other_start: utc_of(o),
                    });
                }
            }
            if !series.is_empty() {
                rep.bookable = false;
                rep.conflicts.push(ResourceConflicts {
                    resource: None,
                    reasons: series,
                });
            }
            occurrences.push(rep);
        }
        Ok(SeriesReport {
            occurrences,
            truncated: exp.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reason_codes_are_documented() {
        let doc = include_str!("../../docs/error-codes.md");
        for code in Reason::CODES {
            assert!(
                doc.contains(&format!("`{code}`")),
                "{code} missing from docs/error-codes.md"
            );
        }
    }
}
