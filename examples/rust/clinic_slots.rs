//! A clinic built in code: two providers in New York and Berlin, an
//! appointment type, one booking. Prints the free slots of the week around
//! the US DST change, explains one refusal and checks a weekly series.
//!
//! Run: `cargo run -p medsched-examples --bin clinic-slots`
#![allow(clippy::print_stdout)] // an example prints
#![forbid(unsafe_code)]

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use medsched_core::records::*;
use medsched_core::{Error, Schedule, SeriesProposal, SlotQuery};

fn instant(s: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| Error::InvalidInput {
            field: "instant".into(),
            detail: format!("`{s}` is not RFC 3339"),
        })
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

fn provider(id: &str, zone: &str) -> Resource {
    Resource {
        id: id.into(),
        name: String::new(),
        kind: ResourceKind::Provider,
        zone: zone.into(),
        capacity: 1,
        tags: vec!["gp".into()],
        department: None,
    }
}

fn weekdays(resource: &str, start: NaiveTime, end: NaiveTime) -> WorkingHours {
    let first = NaiveDate::from_ymd_opt(2027, 1, 4).unwrap_or_default();
    WorkingHours {
        resource: resource.into(),
        dtstart: first.and_time(start),
        end,
        rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(),
        zone: None,
        rdates: vec![],
        exdates: vec![],
        nonexistent: Nonexistent::ShiftForward,
    }
}

fn main() -> Result<(), Error> {
    let clinic = Clinic {
        resources: vec![
            provider("dr-berlin", "Europe/Berlin"),
            provider("dr-ny", "America/New_York"),
        ],
        working_hours: vec![
            weekdays("dr-ny", time(9, 0), time(12, 0)),
            weekdays("dr-berlin", time(14, 0), time(16, 0)),
        ],
        appointment_types: vec![AppointmentType {
            id: "consult".into(),
            name: "Consultation".into(),
            duration_min: 30,
            buffer_before_min: 0,
            buffer_after_min: 5,
            step_min: 15,
            align_offset_min: 0,
            min_notice_min: 60,
            horizon_days: Some(60),
            max_per_day: None,
            max_per_week: None,
            requirements: vec![Requirement {
                count: 1,
                resources: vec![],
                tag: Some("gp".into()),
            }],
            reminders_min: vec![],
        }],
        appointments: vec![Appointment {
            id: "apt-1".into(),
            type_id: Some("consult".into()),
            patient: Some("pat-1".into()),
            resources: vec!["dr-ny".into()],
            start: Some(instant("2027-03-15T09:00:00-04:00")?),
            end: Some(instant("2027-03-15T09:30:00-04:00")?),
            status: AppointmentStatus::Booked,
            buffer_before_min: 0,
            buffer_after_min: 5,
            reason: None,
            notes: None,
        }],
        ..Clinic::default()
    };
    let schedule = Schedule::new(&clinic)?;
    let now = instant("2027-03-01T00:00:00Z")?;
    let query = SlotQuery {
        type_id: "consult".into(),
        from: instant("2027-03-12T00:00:00Z")?,
        to: instant("2027-03-16T00:00:00Z")?,
        now,
        resources: vec![],
    };
    let slots = schedule.slots(&query)?;
    println!(
        "{} bookable starts, {} (resource, start) pairs",
        slots.len(),
        slots.entries.len()
    );
    for e in slots.entries.iter().take(8) {
        let id = schedule.resource_id(e.resource).unwrap_or("?");
        let zone = schedule.resource_zone(id)?;
        println!(
            "  {id:10} {}",
            medsched_core::time::format_in_zone(e.start, zone)
        );
    }
    let why = schedule.explain(
        "consult",
        "dr-ny",
        instant("2027-03-15T09:30:00-04:00")?,
        now,
        None,
    )?;
    println!("dr-ny at 09:30 on 2027-03-15 bookable: {}", why.bookable);
    for r in &why.reasons {
        println!("  {}: {}", r.code(), r.describe());
    }
    let series = SeriesProposal {
        type_id: "consult".into(),
        zone: "America/New_York".into(),
        dtstart: NaiveDate::from_ymd_opt(2027, 3, 1)
            .unwrap_or_default()
            .and_time(time(9, 0)),
        rrule: "FREQ=WEEKLY;COUNT=4".into(),
        resources: vec!["dr-ny".into()],
        patient: Some("pat-2".into()),
    };
    let report = schedule.check_series(&series, now)?;
    for o in &report.occurrences {
        let reasons: Vec<&str> = o
            .conflicts
            .iter()
            .flat_map(|c| c.reasons.iter().map(|r| r.code()))
            .collect();
        println!("  series {} bookable={} {:?}", o.start, o.bookable, reasons);
    }
    Ok(())
}
