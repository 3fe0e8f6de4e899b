//! Builders for test clinics.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use medsched_core::records::*;
use medsched_core::Schedule;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn wall(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
}

pub fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn resource(id: &str, zone: &str) -> Resource {
    Resource {
        id: id.into(),
        name: String::new(),
        kind: ResourceKind::Provider,
        zone: zone.into(),
        capacity: 1,
        tags: vec!["provider".into()],
        department: None,
    }
}

pub fn hours(resource: &str, dtstart: &str, end: &str, rrule: &str) -> WorkingHours {
    WorkingHours {
        resource: resource.into(),
        dtstart: wall(dtstart),
        end: hm(end),
        rrule: rrule.into(),
        zone: None,
        rdates: vec![],
        exdates: vec![],
        nonexistent: Nonexistent::ShiftForward,
    }
}

pub fn appt_type(id: &str, duration: u32, step: u32) -> AppointmentType {
    AppointmentType {
        id: id.into(),
        name: String::new(),
        duration_min: duration,
        buffer_before_min: 0,
        buffer_after_min: 0,
        step_min: step,
        align_offset_min: 0,
        min_notice_min: 0,
        horizon_days: None,
        max_per_day: None,
        max_per_week: None,
        requirements: vec![Requirement {
            count: 1,
            resources: vec![],
            tag: Some("provider".into()),
        }],
        reminders_min: vec![],
    }
}

pub fn appointment(id: &str, resource: &str, start: &str, end: &str) -> Appointment {
    Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec![resource.into()],
        start: Some(t(start)),
        end: Some(t(end)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: None,
        notes: None,
    }
}

pub fn clinic(
    resources: Vec<Resource>,
    working_hours: Vec<WorkingHours>,
    types: Vec<AppointmentType>,
) -> Clinic {
    Clinic {
        settings: Settings::default(),
        resources,
        working_hours,
        overrides: vec![],
        time_off: vec![],
        appointment_types: types,
        appointments: vec![],
    }
}

/// Open spans of a resource as RFC 3339 UTC pairs.
pub fn open_utc(s: &Schedule, r: &str, from: &str, to: &str) -> Vec<(String, String)> {
    s.open(r, t(from), t(to))
        .unwrap()
        .into_iter()
        .map(|(a, b)| {
            (
                medsched_core::time::format_utc(a),
                medsched_core::time::format_utc(b),
            )
        })
        .collect()
}

/// Slot starts of a type for one resource, in the resource's zone.
pub fn slots_local(s: &Schedule, ty: &str, r: &str, from: &str, to: &str) -> Vec<String> {
    let q = medsched_core::SlotQuery {
        type_id: ty.into(),
        from: t(from),
        to: t(to),
        now: t(from),
        resources: vec![r.into()],
    };
    let zone = s.resource_zone(r).unwrap();
    s.slots(&q)
        .unwrap()
        .entries
        .iter()
        .map(|e| medsched_core::time::format_in_zone(e.start, zone))
        .collect()
}
