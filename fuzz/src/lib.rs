//! Helpers shared by the fuzz targets: small arbitrary clinics built as
//! values (never as text), query windows, and the checks every target
//! applies to an error.
//!
//! Everything is drawn from an [`Unstructured`], so libFuzzer's mutations
//! of the input bytes move through clinics of a few resources, zones with
//! DST and half-hour or 45-minute offsets, simple working hours, time off,
//! appointments and types.

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use medsched_core::records::{
    Appointment, AppointmentStatus, AppointmentType, Clinic, DateOverride, LocalBlock, Nonexistent,
    Requirement, Resource, ResourceKind, Settings, Severity, TimeOff, TimeOffKind, WorkingHours,
};
use medsched_core::{Error, SlotQuery};

/// Zones the clinics use: DST in both hemispheres, a 30-minute DST shift
/// (Lord Howe), +05:45 and +05:30 offsets.
pub const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "UTC",
];

/// First local dates of the generated weeks: each a few days before a DST
/// change of one of [`ZONES`] in 2027 (US 14 Mar and 7 Nov, EU 28 Mar and
/// 31 Oct, Lord Howe 4 Apr and 3 Oct), and one quiet week.
pub const BASE_DATES: &[(i32, u32, u32)] = &[
    (2027, 3, 12),
    (2027, 3, 26),
    (2027, 4, 2),
    (2027, 10, 1),
    (2027, 10, 29),
    (2027, 11, 5),
    (2027, 6, 14),
];

/// Every appointment status.
pub const STATUSES: [AppointmentStatus; 10] = [
    AppointmentStatus::Proposed,
    AppointmentStatus::Pending,
    AppointmentStatus::Booked,
    AppointmentStatus::Arrived,
    AppointmentStatus::Fulfilled,
    AppointmentStatus::Cancelled,
    AppointmentStatus::Noshow,
    AppointmentStatus::EnteredInError,
    AppointmentStatus::CheckedIn,
    AppointmentStatus::Waitlist,
];

const QUARTER: i64 = 15 * 60;
const DAY: i64 = 86_400;

/// A generated clinic and the week it is about.
#[derive(Debug, Clone)]
pub struct Built {
    /// The clinic.
    pub clinic: Clinic,
    /// First local date of the week the rules, time off and appointments
    /// are placed around.
    pub base_date: NaiveDate,
    /// Midnight UTC of `base_date`.
    pub base: DateTime<Utc>,
}

/// The checks every error must pass: a code from [`Error::CODES`] (never
/// `internal_error`, which marks a broken invariant), and a message that is
/// one non-empty line starting with a lowercase letter or a symbol.
pub fn check_error(e: &Error) {
    let code = e.code();
    assert!(Error::CODES.contains(&code), "code {code} not in CODES");
    assert_ne!(code, "internal_error", "internal_error for input: {e}");
    let msg = e.to_string();
    assert!(!msg.is_empty(), "empty message for {code}");
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "message of {code} is not one line: {msg:?}"
    );
    assert!(
        !msg.chars().next().is_some_and(char::is_uppercase),
        "message of {code} starts with an uppercase letter: {msg:?}"
    );
}

/// An instant from epoch seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn quarter_time(u: &mut Unstructured<'_>) -> Result<NaiveTime> {
    let q: u32 = u.int_in_range(0..=95)?;
    Ok(NaiveTime::from_hms_opt(q / 4, (q % 4) * 15, 0).unwrap_or_default())
}

fn weekdays(u: &mut Unstructured<'_>) -> Result<String> {
    const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
    let mask: u8 = u.int_in_range(1..=127)?;
    let picked: Vec<&str> = DAYS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect();
    Ok(picked.join(","))
}

fn rrule(u: &mut Unstructured<'_>, base_date: NaiveDate) -> Result<String> {
    let mut r = match u.int_in_range(0..=4)? {
        0 => "FREQ=DAILY".to_owned(),
        1 => format!("FREQ=DAILY;INTERVAL={}", u.int_in_range(2..=3)?),
        2 => format!("FREQ=WEEKLY;INTERVAL=2;BYDAY={}", weekdays(u)?),
        3 => "FREQ=MONTHLY;BYDAY=1MO,-1FR,2SU".to_owned(),
        _ => format!("FREQ=WEEKLY;BYDAY={}", weekdays(u)?),
    };
    match u.int_in_range(0..=5)? {
        0 => r.push_str(&format!(";COUNT={}", u.int_in_range(1..=30)?)),
        1 => {
            let until = base_date + Duration::days(u.int_in_range(1..=8)?);
            r.push_str(&format!(";UNTIL={}T120000Z", until.format("%Y%m%d")));
        }
        _ => {}
    }
    Ok(r)
}

fn near_date(u: &mut Unstructured<'_>, base_date: NaiveDate) -> Result<NaiveDate> {
    Ok(base_date + Duration::days(u.int_in_range(-1..=8)?))
}

/// A small clinic: one to three resources, a few rules each, overrides,
/// time off, one or two types and (with `appointments`) a few existing
/// appointments, all around one week next to a DST change.
///
/// # Errors
///
/// When the input runs out in a way `arbitrary` reports.
pub fn clinic(u: &mut Unstructured<'_>, appointments: bool) -> Result<Built> {
    let &(y, m, d) = u.choose(BASE_DATES)?;
    let base_date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let base = Utc.from_utc_datetime(&base_date.and_time(NaiveTime::MIN));
    let n: usize = u.int_in_range(1..=3)?;
    let mut resources = Vec::with_capacity(n);
    for i in 0..n {
        let mut tags = vec!["any".to_owned()];
        if u.arbitrary()? {
            tags.push("a".to_owned());
        }
        if u.arbitrary()? {
            tags.push("b".to_owned());
        }
        resources.push(Resource {
            id: format!("r{i}").as_str().into(),
            name: String::new(),
            kind: if u.ratio(1, 3)? {
                ResourceKind::Room
            } else {
                ResourceKind::Provider
            },
            zone: (*u.choose(ZONES)?).to_owned(),
            capacity: if u.ratio(1, 4)? { 2 } else { 1 },
            tags,
            department: u.ratio(1, 2)?.then(|| "d1".to_owned()),
        });
    }
    let rid = |u: &mut Unstructured<'_>| -> Result<String> {
        Ok(format!("r{}", u.int_in_range(0..=n - 1)?))
    };

    let mut working_hours = Vec::new();
    for i in 0..n {
        for _ in 0..u.int_in_range(0..=2)? {
            let start = quarter_time(u)?;
            let dtstart = (base_date - Duration::days(u.int_in_range(0..=20)?)).and_time(start);
            let mut rdates = Vec::new();
            let mut exdates = Vec::new();
            if u.ratio(1, 4)? {
                rdates.push(near_date(u, base_date)?);
            }
            if u.ratio(1, 4)? {
                exdates.push(near_date(u, base_date)?);
            }
            working_hours.push(WorkingHours {
                resource: format!("r{i}").as_str().into(),
                dtstart,
                end: quarter_time(u)?,
                rrule: rrule(u, base_date)?,
                zone: if u.ratio(1, 6)? {
                    Some((*u.choose(ZONES)?).to_owned())
                } else {
                    None
                },
                rdates,
                exdates,
                nonexistent: if u.arbitrary()? {
                    Nonexistent::Skip
                } else {
                    Nonexistent::ShiftForward
                },
            });
        }
    }

    let mut overrides = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        let mut blocks = Vec::new();
        for _ in 0..u.int_in_range(0..=2)? {
            blocks.push(LocalBlock {
                start: quarter_time(u)?,
                end: quarter_time(u)?,
            });
        }
        overrides.push(DateOverride {
            resource: rid(u)?.as_str().into(),
            date: near_date(u, base_date)?,
            blocks,
        });
    }

    let mut time_off = Vec::new();
    for i in 0..u.int_in_range(0..=2)? {
        let start = base.timestamp() + QUARTER * u.int_in_range(-8..=7 * 96)?;
        let len = QUARTER * u.int_in_range(1..=4 * 96)?;
        time_off.push(TimeOff {
            id: format!("off{i}"),
            resource: if u.ratio(1, 4)? {
                None
            } else {
                Some(rid(u)?.as_str().into())
            },
            start: at(start),
            end: at(start + len),
            kind: TimeOffKind::Other,
        });
    }

    let mut appointment_types = Vec::new();
    for i in 0..u.int_in_range(1..=2)? {
        let mut requirements = Vec::new();
        let groups = if u.ratio(1, 4)? { 2 } else { 1 };
        for _ in 0..groups {
            if u.arbitrary()? {
                requirements.push(Requirement {
                    count: if n >= 2 && u.ratio(1, 3)? { 2 } else { 1 },
                    resources: vec![],
                    tag: Some("any".into()),
                });
            } else {
                let first = u.int_in_range(0..=n - 1)?;
                let mut named = vec![format!("r{first}").as_str().into()];
                if first + 1 < n && u.arbitrary()? {
                    named.push(format!("r{}", first + 1).as_str().into());
                }
                requirements.push(Requirement {
                    count: 1,
                    resources: named,
                    tag: None,
                });
            }
        }
        appointment_types.push(AppointmentType {
            id: format!("t{i}").as_str().into(),
            name: String::new(),
            duration_min: 5 * u.int_in_range(1..=24)?,
            buffer_before_min: if u.ratio(1, 3)? {
                5 * u.int_in_range(1..=4)?
            } else {
                0
            },
            buffer_after_min: if u.ratio(1, 3)? {
                5 * u.int_in_range(1..=4)?
            } else {
                0
            },
            step_min: *u.choose(&[5, 10, 15, 20, 30, 45, 60, 90])?,
            align_offset_min: if u.ratio(1, 4)? {
                5 * u.int_in_range(1..=11)?
            } else {
                0
            },
            min_notice_min: if u.ratio(1, 3)? {
                60 * u.int_in_range(1..=30)?
            } else {
                0
            },
            horizon_days: if u.ratio(1, 4)? {
                Some(u.int_in_range(1..=10)?)
            } else {
                None
            },
            max_per_day: if u.ratio(1, 4)? {
                Some(u.int_in_range(1..=3)?)
            } else {
                None
            },
            max_per_week: if u.ratio(1, 6)? {
                Some(u.int_in_range(1..=5)?)
            } else {
                None
            },
            requirements,
            reminders_min: if u.arbitrary()? { vec![60] } else { vec![] },
        });
    }

    let mut appts = Vec::new();
    if appointments {
        let types = appointment_types.len();
        for i in 0..u.int_in_range(0..=6)? {
            let start = base.timestamp() + QUARTER * u.int_in_range(0..=7 * 96)?;
            let len = 300 * u.int_in_range(1..=24)?;
            let mut rs = vec![rid(u)?.as_str().into()];
            if n > 1 && u.ratio(1, 4)? {
                let other = rid(u)?;
                if rs
                    .iter()
                    .all(|r: &medsched_core::records::ResourceId| r.0 != other)
                {
                    rs.push(other.as_str().into());
                }
            }
            appts.push(Appointment {
                id: format!("a{i}").as_str().into(),
                type_id: if u.arbitrary()? {
                    Some(
                        format!("t{}", u.int_in_range(0..=types - 1)?)
                            .as_str()
                            .into(),
                    )
                } else {
                    None
                },
                patient: if u.arbitrary()? {
                    Some(format!("p{}", u.int_in_range(0..=2)?).as_str().into())
                } else {
                    None
                },
                resources: rs,
                start: Some(at(start)),
                end: Some(at(start + len)),
                status: *u.choose(&STATUSES)?,
                buffer_before_min: if u.ratio(1, 4)? { 10 } else { 0 },
                buffer_after_min: if u.ratio(1, 4)? { 5 } else { 0 },
                reason: None,
                notes: None,
            });
        }
    }

    Ok(Built {
        clinic: Clinic {
            settings: Settings {
                patient_overlap: if u.arbitrary()? {
                    Severity::Warn
                } else {
                    Severity::Block
                },
            },
            resources,
            working_hours,
            overrides,
            time_off,
            appointment_types,
            appointments: appts,
        },
        base_date,
        base,
    })
}

/// A slot query over part of the clinic's week: a window of one hour to
/// three days, "now" from a day before it to inside it, optionally limited
/// to one resource.
///
/// # Errors
///
/// When the input runs out in a way `arbitrary` reports.
pub fn query(u: &mut Unstructured<'_>, built: &Built) -> Result<SlotQuery> {
    let types = built.clinic.appointment_types.len().max(1);
    let from = built.base.timestamp() + QUARTER * u.int_in_range(-8..=4 * 96)?;
    let to = from + QUARTER * u.int_in_range(4..=3 * 96)?;
    let now = from + QUARTER * u.int_in_range(-96..=96)?;
    let resources = if u.ratio(1, 4)? {
        let n = built.clinic.resources.len().max(1);
        vec![format!("r{}", u.int_in_range(0..=n - 1)?)]
    } else {
        vec![]
    };
    Ok(SlotQuery {
        type_id: format!("t{}", u.int_in_range(0..=types - 1)?),
        from: at(from),
        to: at(to),
        now: at(now),
        resources,
    })
}

/// The largest number of spans that overlap at one instant (half-open
/// spans: touching ones do not overlap).
pub fn max_overlap(spans: &[(i64, i64)]) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::with_capacity(spans.len() * 2);
    for &(s, e) in spans {
        events.push((s, 1));
        events.push((e, -1));
    }
    // Ends sort before starts at the same instant.
    events.sort_unstable();
    let (mut depth, mut most) = (0i32, 0i32);
    for (_, d) in events {
        depth += d;
        most = most.max(depth);
    }
    usize::try_from(most).unwrap_or(0)
}

/// One day in seconds, for window arithmetic in the targets.
pub const ONE_DAY: i64 = DAY;

/// Prints a generated value to stderr when `MEDSCHED_FUZZ_DEBUG` is set,
/// to see what a crashing input stands for (run the target binary on the
/// file with the variable set).
pub fn debug_dump(what: &str, value: &impl std::fmt::Debug) {
    if std::env::var_os("MEDSCHED_FUZZ_DEBUG").is_some() {
        eprintln!("{what}: {value:#?}");
    }
}
