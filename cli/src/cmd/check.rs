//! `medsched check`: conflicts of a proposed appointment or series.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use medsched_core::explain::ResourceConflicts;
use medsched_core::{Format, OccurrenceReport, Reason, Schedule};
use serde_json::{json, Value};

use crate::error::{CliError, EXIT_CONFLICT};
use crate::input::{load_clinic, parse_opt_instant, read_file};
use crate::render::{local_long, reason_line, reasons_json, utc, Out};
use crate::{CheckArgs, ReportFormat};

/// What the checked file holds: one appointment or a series.
pub(crate) use medsched_core::CheckRequest as Doc;

/// The outcome of a check, single or series alike.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) heading: String,
    /// Zone for local times in the listing.
    pub(crate) zone: Tz,
    pub(crate) occurrences: Vec<OccurrenceReport>,
    pub(crate) truncated: bool,
}

impl Checked {
    pub(crate) fn conflicting(&self) -> usize {
        self.occurrences.iter().filter(|o| !o.bookable).count()
    }
}

pub(crate) fn run(a: &CheckArgs) -> Result<Out, CliError> {
    let schedule = load_clinic(&a.clinic)?;
    let doc = parse_doc(&read_file(&a.file)?, Format::from_path(&a.file))?;
    // The core never reads the clock; the command line may.
    let now = parse_opt_instant("--now", a.now.as_deref())?.unwrap_or_else(Utc::now);
    let checked = check(&schedule, &doc, now)?;
    let mut out = Out::default();
    match a.format {
        ReportFormat::Json => out.json(&checked_json(&doc, &checked, now)),
        ReportFormat::Text => text(&checked, &mut out),
    }
    if checked.truncated {
        out.notes.push(format!(
            "the series was cut at {} occurrences; later ones were not checked",
            checked.occurrences.len()
        ));
    }
    if checked.conflicting() > 0 {
        out.status = EXIT_CONFLICT;
    }
    Ok(out)
}

/// Reads a proposal, or a series when the document has an `rrule` key.
pub(crate) fn parse_doc(text: &str, format: Format) -> Result<Doc, CliError> {
    Ok(medsched_core::parse_check_request(text, format)?)
}

pub(crate) fn check(
    schedule: &Schedule,
    doc: &Doc,
    now: DateTime<Utc>,
) -> Result<Checked, CliError> {
    match doc {
        Doc::Single(p) => {
            let rep = schedule.check(p, now)?;
            let zone = display_zone(schedule, &p.resources, &rep);
            let on = if p.resources.is_empty() {
                String::new()
            } else {
                format!(" on {}", p.resources.join(", "))
            };
            Ok(Checked {
                heading: format!("appointment `{}`{on} at {}", p.type_id, utc(p.start)),
                zone,
                occurrences: vec![rep],
                truncated: false,
            })
        }
        Doc::Series(p) => {
            let rep = schedule.check_series(p, now)?;
            let zone = medsched_core::time::parse_zone(&p.zone)?;
            let on = if p.resources.is_empty() {
                String::new()
            } else {
                format!(" on {}", p.resources.join(", "))
            };
            Ok(Checked {
                heading: format!(
                    "series `{}`{on}: {} from {} {}",
                    p.type_id,
                    p.rrule.trim(),
                    p.dtstart.format("%Y-%m-%dT%H:%M:%S"),
                    p.zone
                ),
                zone,
                occurrences: rep.occurrences,
                truncated: rep.truncated,
            })
        }
    }
}

/// The zone to show a single proposal's local time in: that of the first
/// chosen, assigned or conflicting resource; UTC when there is none.
fn display_zone(schedule: &Schedule, chosen: &[String], rep: &OccurrenceReport) -> Tz {
    chosen
        .iter()
        .chain(&rep.assigned)
        .chain(rep.conflicts.iter().filter_map(|c| c.resource.as_ref()))
        .find_map(|id| schedule.resource_zone(id).ok())
        .unwrap_or(Tz::UTC)
}

/// The label of a conflict: its resource, or what the reasons are about
/// when they concern no one resource.
fn conflict_label(c: &ResourceConflicts) -> &str {
    if let Some(r) = &c.resource {
        r
    } else if c
        .reasons
        .iter()
        .any(|r| matches!(r, Reason::SeriesOverlap { .. }))
    {
        "(series)"
    } else {
        "(resources)"
    }
}

pub(crate) fn text(c: &Checked, out: &mut Out) {
    out.line(&c.heading);
    for o in &c.occurrences {
        let when = format!("{}  {}", utc(o.start), local_long(o.start, c.zone));
        if o.bookable {
            out.line(format!("{when}  bookable  {}", o.assigned.join(", ")));
        } else {
            out.line(format!("{when}  conflict"));
        }
        for rc in &o.conflicts {
            for r in &rc.reasons {
                out.line(format!("    {}  {}", conflict_label(rc), reason_line(r)));
            }
        }
        for r in &o.patient_conflicts {
            out.line(format!("    patient  {}", reason_line(r)));
        }
        for r in &o.warnings {
            out.line(format!("    warning  {}", reason_line(r)));
        }
    }
    let total = c.occurrences.len();
    out.line(format!(
        "{} of {total} occurrence{} conflict{}",
        c.conflicting(),
        if total == 1 { "" } else { "s" },
        if total == 1 { "s" } else { "" }
    ));
}

fn checked_json(doc: &Doc, c: &Checked, now: DateTime<Utc>) -> Value {
    let occurrences: Vec<Value> = c
        .occurrences
        .iter()
        .map(|o| {
            json!({
                "start": utc(o.start),
                "end": utc(o.end),
                "bookable": o.bookable,
                "assigned": o.assigned,
                "conflicts": o.conflicts.iter().map(|rc| json!({
                    "resource": rc.resource,
                    "reasons": reasons_json(&rc.reasons),
                })).collect::<Vec<_>>(),
                "patient_conflicts": reasons_json(&o.patient_conflicts),
                "warnings": reasons_json(&o.warnings),
            })
        })
        .collect();
    json!({
        "kind": match doc { Doc::Single(_) => "appointment", Doc::Series(_) => "series" },
        "now": utc(now),
        "total": c.occurrences.len(),
        "conflicting": c.conflicting(),
        "truncated": c.truncated,
        "occurrences": occurrences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rrule_key_makes_a_series() {
        let series = r#"{"type":"v","zone":"UTC","dtstart":"2027-03-01T10:00:00","rrule":"FREQ=DAILY;COUNT=2"}"#;
        assert!(matches!(
            parse_doc(series, Format::Json).unwrap(),
            Doc::Series(_)
        ));
        let single = r#"{"type":"v","start":"2027-03-01T10:00:00Z"}"#;
        assert!(matches!(
            parse_doc(single, Format::Json).unwrap(),
            Doc::Single(_)
        ));
        let toml = "type = \"v\"\nstart = \"2027-03-01T10:00:00Z\"\n";
        assert!(matches!(
            parse_doc(toml, Format::Toml).unwrap(),
            Doc::Single(_)
        ));
    }

    #[test]
    fn unknown_fields_are_malformed_without_type_names() {
        let e = parse_doc(
            r#"{"type":"v","start":"2027-03-01T10:00:00Z","x":1}"#,
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(e.code(), "malformed_document");
        assert!(e.to_string().contains("line 1 column"), "{e}");
        let e = parse_doc("type = \"v\"\nstart = 3\n", Format::Toml).unwrap_err();
        assert!(e.to_string().contains("line 2 column"), "{e}");
        let e = parse_doc("[1]", Format::Json).unwrap_err();
        assert_eq!(e.code(), "malformed_document");
        assert!(!e.to_string().contains("struct"), "{e}");
    }
}
