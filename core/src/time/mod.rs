//! Time: zones, wall-clock resolution with an explicit gap/fold policy, and
//! cached zone transitions so that hot loops work on integer instants.
//!
//! An instant is an `i64` count of seconds since the Unix epoch (UTC). A *wall*
//! value is the same count for a local civil date-time read as if it were UTC
//! ("local seconds"); `wall - offset = instant`.

mod table;

pub use table::ZoneTable;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::Error;

/// Seconds in a civil day.
pub const DAY: i64 = 86_400;

pub use medsched_storage::Nonexistent;

/// Parses an IANA zone name.
///
/// # Errors
///
/// [`Error::UnknownZone`] when the name is not in the IANA database.
pub fn parse_zone(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|_| Error::unknown_zone(name))
}

/// Local seconds of a civil date-time.
pub fn wall_of(naive: NaiveDateTime) -> i64 {
    naive.and_utc().timestamp()
}

/// Local seconds of a civil date at a time of day.
pub fn wall_of_date(date: NaiveDate, time: NaiveTime) -> i64 {
    wall_of(date.and_time(time))
}

/// The civil date-time of local seconds.
pub fn naive_of_wall(wall: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(wall, 0)
        .map(|d| d.naive_utc())
        .unwrap_or(NaiveDateTime::MIN)
}

/// The UTC date-time of an instant.
pub fn utc_of(instant: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(instant, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Days since 1970-01-01 of local seconds (floor).
pub fn day_of_wall(wall: i64) -> i64 {
    wall.div_euclid(DAY)
}

/// The civil date of a day number (days since 1970-01-01).
pub fn date_of_day(day: i64) -> NaiveDate {
    naive_of_wall(day.saturating_mul(DAY)).date()
}

/// The day number (days since 1970-01-01) of a civil date.
pub fn day_of_date(date: NaiveDate) -> i64 {
    day_of_wall(wall_of(date.and_time(NaiveTime::MIN)))
}

/// Weekday of a day number, Monday = 0.
pub fn weekday_of_day(day: i64) -> u32 {
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    (day + 3).rem_euclid(7) as u32
}

/// Formats an instant as RFC 3339 in `zone` with the offset in force.
pub fn format_in_zone(instant: i64, zone: Tz) -> String {
    zone.from_utc_datetime(&utc_of(instant).naive_utc())
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// Formats an instant as RFC 3339 UTC with a `Z` suffix.
pub fn format_utc(instant: i64) -> String {
    utc_of(instant).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Resolves a civil date-time in `zone` to an instant with the given policy,
/// using the chrono-tz database directly (no cache). `None` only for a
/// nonexistent time under [`Nonexistent::Skip`].
pub fn resolve_naive(zone: Tz, naive: NaiveDateTime, policy: Nonexistent) -> Option<i64> {
    let wall = wall_of(naive);
    ZoneTable::new(zone, wall - 2 * DAY, wall + 2 * DAY).resolve(wall, policy)
}
