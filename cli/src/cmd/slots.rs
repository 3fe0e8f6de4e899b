//! `medsched slots`: bookable starts of a type in a window.

use chrono::{DateTime, NaiveDate, Offset, Utc};
use chrono_tz::Tz;
use medsched_core::{Schedule, SlotQuery, Slots};
use std::io::Write;

use serde_json::json;

use crate::error::CliError;
use crate::input::{load_clinic, parse_instant, parse_opt_instant};
use crate::render::{csv_field, day_label, hhmm, instant, local, utc, Body, Out};
use crate::{SlotFormat, SlotsArgs};

pub(crate) fn run(a: &SlotsArgs) -> Result<Out, CliError> {
    let schedule = load_clinic(&a.clinic)?;
    let from = parse_instant("--from", &a.from)?;
    let to = parse_instant("--to", &a.to)?;
    let now = parse_opt_instant("--now", a.now.as_deref())?.unwrap_or(from);
    let query = SlotQuery {
        type_id: a.type_id.clone(),
        from,
        to,
        now,
        resources: a.resources.clone(),
    };
    let slots = schedule.slots(&query)?;
    let mut out = Out::default();
    match a.format {
        // CSV and JSON listings are streamed: a long window on a fine grid
        // holds up to `MAX_SLOT_ENTRIES` entries.
        SlotFormat::Csv => out.body = Some(Body(Box::new(move |w| csv(&slots, w)))),
        SlotFormat::Json => out.body = Some(Body(Box::new(move |w| slots_json(&slots, w)))),
        SlotFormat::Text => text(&schedule, &query, &slots, &mut out)?,
    }
    Ok(out)
}

/// `resource_id,slot_start` per entry, in the core's order (resource id,
/// then start); no header.
fn csv(slots: &Slots, w: &mut dyn Write) -> std::io::Result<()> {
    for e in &slots.entries {
        if let Some(id) = slots.resource_id(e.resource) {
            writeln!(w, "{},{}", csv_field(id), utc(instant(e.start)))?;
        }
    }
    Ok(())
}

/// An array of `{end, resource, start}` objects, pretty-printed with the
/// keys in the order `serde_json` gives them, written entry by entry.
fn slots_json(slots: &Slots, w: &mut dyn Write) -> std::io::Result<()> {
    let mut first = true;
    for e in &slots.entries {
        let Some(id) = slots.resource_id(e.resource) else {
            continue;
        };
        w.write_all(if first { b"[\n" } else { b",\n" })?;
        first = false;
        let item = json!({
            "resource": id,
            "start": utc(instant(e.start)),
            "end": utc(instant(e.start.saturating_add(slots.duration))),
        });
        // Indent the object one level inside the array.
        let text = format!("{item:#}");
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                w.write_all(b"\n")?;
            }
            write!(w, "  {line}")?;
        }
    }
    w.write_all(if first { b"[]\n" } else { b"\n]\n" })
}

fn text(schedule: &Schedule, q: &SlotQuery, slots: &Slots, out: &mut Out) -> Result<(), CliError> {
    out.line(format!(
        "`{}` ({} min): {} bookable start{} from {} to {}",
        q.type_id,
        slots.duration / 60,
        slots.len(),
        if slots.len() == 1 { "" } else { "s" },
        utc(q.from),
        utc(q.to)
    ));
    if slots.entries.is_empty() {
        out.line("no bookable slots");
        return Ok(());
    }
    for (id, starts) in per_resource(schedule, slots) {
        let zone = schedule.resource_zone(id)?;
        out.blank();
        out.line(format!("{id} ({})", zone.name()));
        for (date, day) in by_local_day(&starts, zone) {
            let with_zone = has_two_offsets(&day, zone);
            let times: Vec<String> = day.iter().map(|t| hhmm(*t, zone, with_zone)).collect();
            out.line(format!(
                "  {}  {:>3}  {}",
                day_label(date),
                day.len(),
                times.join(" ")
            ));
        }
    }
    Ok(())
}

/// Entries grouped by resource, in the core's order.
pub(crate) fn per_resource<'s>(
    schedule: &'s Schedule,
    slots: &Slots,
) -> Vec<(&'s str, Vec<DateTime<Utc>>)> {
    let mut groups: Vec<(&str, Vec<DateTime<Utc>>)> = Vec::new();
    for e in &slots.entries {
        let Some(id) = schedule.resource_id(e.resource) else {
            continue;
        };
        match groups.last_mut() {
            Some((last, v)) if *last == id => v.push(instant(e.start)),
            _ => groups.push((id, vec![instant(e.start)])),
        }
    }
    groups
}

/// Ascending instants grouped by their local date in `zone`.
pub(crate) fn by_local_day(
    starts: &[DateTime<Utc>],
    zone: Tz,
) -> Vec<(NaiveDate, Vec<DateTime<Utc>>)> {
    let mut days: Vec<(NaiveDate, Vec<DateTime<Utc>>)> = Vec::new();
    for &t in starts {
        let date = local(t, zone).date_naive();
        match days.last_mut() {
            Some((d, v)) if *d == date => v.push(t),
            _ => days.push((date, vec![t])),
        }
    }
    days
}

/// Whether the instants of one local day are under two UTC offsets (a DST
/// day), so that times need their zone abbreviation to be unambiguous.
pub(crate) fn has_two_offsets(day: &[DateTime<Utc>], zone: Tz) -> bool {
    let mut offsets = day.iter().map(|t| local(*t, zone).offset().fix());
    match offsets.next() {
        Some(first) => offsets.any(|o| o != first),
        None => false,
    }
}
