//! `medsched expand`: occurrences of iCalendar recurrence lines.

use medsched_core::recurrence::Recurrence;
use medsched_core::time::{format_in_zone, parse_zone, Nonexistent, DAY};

use crate::error::CliError;
use crate::input::{parse_opt_instant, read_file_or_stdin};
use crate::render::Out;
use crate::ExpandArgs;

/// Default window length after `--from`, in days.
const DEFAULT_DAYS: i64 = 400;

pub(crate) fn run(a: &ExpandArgs) -> Result<Out, CliError> {
    let default_zone = match &a.tz {
        Some(z) => parse_zone(z)?,
        None => chrono_tz::UTC,
    };
    let from = parse_opt_instant("--from", a.from.as_deref())?;
    let to = parse_opt_instant("--to", a.to.as_deref())?;
    if a.limit == 0 {
        return Err(CliError::Input(
            "invalid `--limit` value `0`: must be at least 1".into(),
        ));
    }
    let text = read_file_or_stdin(a.file.as_deref(), "icalendar")?;
    let mut set = Recurrence::parse_ical(&text, default_zone)?;
    if a.skip_nonexistent {
        set = set.with_policy(Nonexistent::Skip);
    }
    let zone = set.zone();
    let from = match from {
        Some(t) => t.timestamp(),
        // DTSTART's instant; a DTSTART in a gap reads as shifted forward, so
        // that under --skip-nonexistent it is the one dropped.
        None => set.dtstart_instant(),
    };
    let to = match to {
        Some(t) => t.timestamp(),
        None => from.saturating_add(DEFAULT_DAYS * DAY),
    };
    let exp = set.expand(from, to, a.limit)?;
    let mut out = Out::default();
    for &t in &exp.instants {
        out.line(format_in_zone(t, zone));
    }
    if exp.truncated {
        out.notes.push(format!(
            "stopped after {} occurrences (--limit)",
            exp.instants.len()
        ));
    }
    Ok(out)
}
