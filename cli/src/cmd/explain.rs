//! `medsched explain`: whether one resource can take one start, and why not.

use chrono::{DateTime, Utc};
use medsched_core::{Explanation, Schedule};
use serde_json::json;

use crate::error::CliError;
use crate::input::{load_clinic, parse_instant, parse_opt_instant};
use crate::render::{local_long, reason_line, reasons_json, utc, Out};
use crate::{ExplainArgs, ReportFormat};

pub(crate) fn run(a: &ExplainArgs) -> Result<Out, CliError> {
    let schedule = load_clinic(&a.clinic)?;
    let at = parse_instant("--at", &a.at)?;
    // The core never reads the clock; the command line may.
    let now = parse_opt_instant("--now", a.now.as_deref())?.unwrap_or_else(Utc::now);
    let ex = schedule.explain(&a.type_id, &a.resource, at, now, a.patient.as_deref())?;
    let mut out = Out::default();
    match a.format {
        ReportFormat::Json => out.json(&json!({
            "type": a.type_id,
            "resource": ex.resource,
            "start": utc(ex.start),
            "end": utc(ex.end),
            "now": utc(now),
            "bookable": ex.bookable,
            "reasons": reasons_json(&ex.reasons),
            "warnings": reasons_json(&ex.warnings),
        })),
        ReportFormat::Text => text(&schedule, &a.type_id, &ex, now, &mut out)?,
    }
    Ok(out)
}

/// The readable explanation; also used by `demo`.
pub(crate) fn text(
    schedule: &Schedule,
    type_id: &str,
    ex: &Explanation,
    now: DateTime<Utc>,
    out: &mut Out,
) -> Result<(), CliError> {
    let zone = schedule.resource_zone(&ex.resource)?;
    out.line(format!(
        "`{type_id}` on {} at {} ({}), seen at {}: {}",
        ex.resource,
        utc(ex.start),
        local_long(ex.start, zone),
        utc(now),
        if ex.bookable {
            "bookable"
        } else {
            "not bookable"
        }
    ));
    for r in &ex.reasons {
        out.line(format!("  {}", reason_line(r)));
    }
    for w in &ex.warnings {
        out.line(format!("  warning {}", reason_line(w)));
    }
    Ok(())
}
