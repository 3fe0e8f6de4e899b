//! `medsched demo`: a built-in clinic, a fortnight of availability across
//! the US DST change of 2027-03-14, then one explained conflict.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Offset, Utc};
use chrono_tz::Tz;
use medsched_core::records::{Clinic, ResourceKind};
use medsched_core::time::{resolve_naive, Nonexistent};
use medsched_core::{Format, Proposal, Schedule, SlotQuery, Slots};

use crate::cmd::check::{self, Doc};
use crate::cmd::{explain, slots};
use crate::error::CliError;
use crate::render::{day_label, hhmm, instant, local, local_long, utc, Out};

/// The demo clinic; the same file is the golden fixture
/// `fixtures/demo-clinic.json`.
pub(crate) const DEMO_CLINIC: &str = include_str!("../demo_clinic.json");

/// First and last local date shown.
const FIRST_DAY: (i32, u32, u32) = (2027, 3, 8);
const DAYS: u64 = 14;
/// The slot window covers the fortnight in every zone of the clinic, and
/// `now` is its start.
const WINDOW_FROM: &str = "2027-03-07T12:00:00Z";
const WINDOW_TO: &str = "2027-03-22T12:00:00Z";

/// The conflict explained at the end: `consult` on Tue 2027-03-09, next to
/// appointment `appt-1` (10:00-10:30 EST with a 10-minute buffer after).
const BUFFER_AT: &str = "2027-03-09T15:30:00Z";
const OVERLAP_AT: &str = "2027-03-09T14:45:00Z";

pub(crate) fn run() -> Result<Out, CliError> {
    let clinic = medsched_core::parse_clinic(DEMO_CLINIC, Format::Json)?;
    let schedule = Schedule::new(&clinic)?;
    let from = fixed(WINDOW_FROM)?;
    let to = fixed(WINDOW_TO)?;
    let now = from;
    let first = NaiveDate::from_ymd_opt(FIRST_DAY.0, FIRST_DAY.1, FIRST_DAY.2)
        .ok_or_else(|| CliError::Input("demo start date is invalid".into()))?;

    let mut types = Vec::new();
    for t in &clinic.appointment_types {
        let q = SlotQuery {
            type_id: t.id.0.clone(),
            from,
            to,
            now,
            resources: Vec::new(),
        };
        types.push(TypeSlots {
            id: t.id.0.clone(),
            step_secs: i64::from(t.step_min) * 60,
            slots: schedule.slots(&q)?,
        });
    }

    let mut out = Out::default();
    heading(&clinic, first, now, &mut out);
    for r in clinic
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Provider)
    {
        let id = r.id.as_str();
        let zone = schedule.resource_zone(id)?;
        out.blank();
        out.line(format!("{id} - {} ({})", r.name, zone.name()));
        let eligible: Vec<&TypeSlots> = types
            .iter()
            .filter(|t| eligible(&schedule, &t.id, id))
            .collect();
        for k in 0..DAYS {
            let Some(date) = first.checked_add_days(Days::new(k)) else {
                continue;
            };
            out.line(day_line(&schedule, &clinic, id, zone, date, &eligible)?);
        }
    }
    out.blank();
    conflict(&schedule, &types, now, &mut out)?;
    Ok(out)
}

struct TypeSlots {
    id: String,
    step_secs: i64,
    slots: Slots,
}

fn fixed(s: &str) -> Result<DateTime<Utc>, CliError> {
    crate::input::parse_instant("demo", s)
}

fn heading(clinic: &Clinic, first: NaiveDate, now: DateTime<Utc>, out: &mut Out) {
    let last = first.checked_add_days(Days::new(DAYS - 1)).unwrap_or(first);
    out.line(format!(
        "medsched demo: a New York clinic with a video consultant in Berlin, {} to {}",
        day_label(first),
        day_label(last)
    ));
    out.line(
        "US clocks spring forward on Sun 2027-03-14 (02:00 EST becomes 03:00 EDT); Berlin stays on CET",
    );
    for t in &clinic.appointment_types {
        let needs: Vec<String> = t
            .requirements
            .iter()
            .map(|g| {
                let mut names: Vec<String> = g.resources.iter().map(|r| r.0.clone()).collect();
                if let Some(tag) = &g.tag {
                    names.push(format!("tag `{tag}`"));
                }
                format!("{} of {}", g.count, names.join(" or "))
            })
            .collect();
        let buffer = if t.buffer_after_min > 0 {
            format!(" + {} min buffer", t.buffer_after_min)
        } else {
            String::new()
        };
        out.line(format!(
            "type `{}` ({}): {} min{buffer}, every {} min, needs {}",
            t.id,
            t.name,
            t.duration_min,
            t.step_min,
            needs.join(" and ")
        ));
    }
    out.line(format!(
        "free = bookable starts seen at {}; times are each provider's local time",
        utc(now)
    ));
}

/// Whether the core counts `resource` among the type's resources.
fn eligible(schedule: &Schedule, type_id: &str, resource: &str) -> bool {
    schedule.can_serve(type_id, resource).unwrap_or(false)
}

/// One local day of one provider: open hours, free starts per type, notes.
fn day_line(
    schedule: &Schedule,
    clinic: &Clinic,
    id: &str,
    zone: Tz,
    date: NaiveDate,
    types: &[&TypeSlots],
) -> Result<String, CliError> {
    let (start, end) = local_day(zone, date)?;
    let open = schedule.open(id, start, end)?;
    let hours = if open.is_empty() {
        "closed".to_owned()
    } else {
        open.iter()
            .map(|&(s, e)| {
                let to = if e >= end.timestamp() {
                    "24:00".to_owned()
                } else {
                    hhmm(instant(e), zone, false)
                };
                format!("{}-{to}", hhmm(instant(s), zone, false))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = vec![format!("  {}  {hours:<24}", day_label(date))];
    if !open.is_empty() {
        for t in types {
            parts.push(free_summary(schedule, t, id, zone, date));
        }
    }
    let mut notes = Vec::new();
    let (before, after) = (local(start, zone), local(end, zone));
    if before.offset().fix() != after.offset().fix() {
        notes.push(format!(
            "clocks change {} -> {}",
            before.format("%Z"),
            after.format("%Z")
        ));
    }
    for off in &clinic.time_off {
        let applies = off.resource.as_ref().is_none_or(|r| r.as_str() == id);
        if applies && off.start < end && off.end > start {
            notes.push(format!("time off `{}`", off.id));
        }
    }
    if clinic
        .overrides
        .iter()
        .any(|o| o.resource.as_str() == id && o.date == date)
    {
        notes.push("hours changed for this date".into());
    }
    if !notes.is_empty() {
        parts.push(format!("[{}]", notes.join("; ")));
    }
    Ok(parts.join("  ").trim_end().to_owned())
}

/// `consult 23 free: 09:00-09:45, 10:45-16:15` (runs of starts one step
/// apart).
fn free_summary(schedule: &Schedule, t: &TypeSlots, id: &str, zone: Tz, date: NaiveDate) -> String {
    let starts: Vec<DateTime<Utc>> = slots::per_resource(schedule, &t.slots)
        .into_iter()
        .filter(|(r, _)| *r == id)
        .flat_map(|(_, v)| v)
        .filter(|s| local(*s, zone).date_naive() == date)
        .collect();
    if starts.is_empty() {
        return format!("{} none free", t.id);
    }
    let with_zone = slots::has_two_offsets(&starts, zone);
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for &s in &starts {
        match runs.last_mut() {
            Some((_, last)) if (s - *last).num_seconds() == t.step_secs => *last = s,
            _ => runs.push((s, s)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|(a, b)| {
            let (za, zb) = (abbrev(*a, zone), abbrev(*b, zone));
            match (a == b, with_zone, za == zb) {
                (true, _, _) => hhmm(*a, zone, with_zone),
                (false, false, _) => format!("{}-{}", hhmm(*a, zone, false), hhmm(*b, zone, false)),
                // One zone abbreviation for a run that keeps its offset.
                (false, true, true) => {
                    format!("{}-{} {za}", hhmm(*a, zone, false), hhmm(*b, zone, false))
                }
                (false, true, false) => {
                    format!("{}-{}", hhmm(*a, zone, true), hhmm(*b, zone, true))
                }
            }
        })
        .collect();
    format!("{} {} free: {}", t.id, starts.len(), runs.join(", "))
}

fn abbrev(t: DateTime<Utc>, zone: Tz) -> String {
    local(t, zone).format("%Z").to_string()
}

/// The instants of local midnight of `date` and of the next date.
fn local_day(zone: Tz, date: NaiveDate) -> Result<(DateTime<Utc>, DateTime<Utc>), CliError> {
    let midnight = |d: NaiveDate| {
        resolve_naive(zone, d.and_time(NaiveTime::MIN), Nonexistent::ShiftForward).map(instant)
    };
    let next = date.succ_opt();
    match (midnight(date), next.and_then(midnight)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CliError::Input(format!(
            "no local day {date} in {}",
            zone.name()
        ))),
    }
}

/// Explains why two starts next to appointment `appt-1` are refused, and
/// names the earliest start that works.
fn conflict(
    schedule: &Schedule,
    types: &[TypeSlots],
    now: DateTime<Utc>,
    out: &mut Out,
) -> Result<(), CliError> {
    let ny = schedule.resource_zone("dr-ames")?;
    let buffer_at = fixed(BUFFER_AT)?;
    let overlap_at = fixed(OVERLAP_AT)?;
    out.line(format!(
        "Why is {} not offered for dr-ames? (appointment `appt-1` runs 10:00-10:30 with a 10 min buffer after)",
        local_long(buffer_at, ny)
    ));
    out.line(format!(
        "$ medsched explain demo-clinic.json --type consult --resource dr-ames --at {} --now {}",
        utc(buffer_at),
        utc(now)
    ));
    let ex = schedule.explain("consult", "dr-ames", buffer_at, now, None)?;
    explain::text(schedule, "consult", &ex, now, out)?;
    out.blank();
    out.line(format!(
        "Can anyone see a patient for `consult` at {}?",
        local_long(overlap_at, ny)
    ));
    out.line(format!(
        "$ medsched check demo-clinic.json proposal.json --now {}   # {{\"type\": \"consult\", \"start\": \"{}\"}}",
        utc(now),
        utc(overlap_at)
    ));
    let doc = Doc::Single(Proposal {
        type_id: "consult".into(),
        start: overlap_at,
        resources: Vec::new(),
        patient: None,
    });
    let checked = check::check(schedule, &doc, now)?;
    check::text(&checked, out);
    let next = types.iter().find(|t| t.id == "consult").and_then(|t| {
        t.slots
            .assignments()
            .into_iter()
            .find(|a| a.start > overlap_at.timestamp())
    });
    if let Some(a) = next {
        let who: Vec<&str> = a
            .groups
            .iter()
            .flatten()
            .filter_map(|r| schedule.resource_id(*r))
            .collect();
        out.line(format!(
            "earliest bookable start after it: {} with {}",
            local_long(instant(a.start), ny),
            who.join(" and ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_clinic_loads() {
        let s = medsched_core::load_schedule(DEMO_CLINIC, Format::Json).unwrap();
        assert_eq!(s.resource_ids().count(), 5);
    }
}
