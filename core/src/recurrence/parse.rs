//! Reading iCalendar recurrence lines. DTSTART, RDATE and EXDATE are read
//! here (so a DTSTART inside a DST gap is accepted); the RRULE value is
//! split into what the `rrule` crate expands and COUNT/UNTIL, which the
//! caller applies.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::{Moment, Recurrence};
use crate::error::{truncate, Error};
use crate::time::{parse_zone, Nonexistent};

/// An RRULE value split for expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleParts {
    /// The rule without COUNT and UNTIL, for the `rrule` crate.
    pub crate_text: String,
    /// COUNT, if given.
    pub count: Option<u32>,
    /// UNTIL, if given.
    pub until: Option<Moment>,
    /// FREQ, upper case.
    pub freq: String,
    /// INTERVAL (1 if absent).
    pub interval: u32,
    /// BYDAY entries as given (upper case), empty if absent.
    pub byday: Vec<String>,
    /// WKST (`MO` if absent).
    pub wkst: String,
    /// Whether any part other than FREQ, INTERVAL, BYDAY, WKST, COUNT and
    /// UNTIL is present.
    pub has_other_parts: bool,
}

/// Splits an RRULE value (`FREQ=WEEKLY;BYDAY=MO,WE`; a leading `RRULE:` is
/// allowed).
///
/// # Errors
///
/// [`Error::RruleInvalid`] for a missing FREQ, a repeated part, or a bad
/// COUNT, UNTIL or INTERVAL.
pub fn parse_rrule_parts(text: &str) -> Result<RuleParts, Error> {
    let body = text.trim();
    let body = strip_prefix_ci(body, "RRULE:").unwrap_or(body);
    if body.is_empty() {
        return Err(Error::rrule("empty rule"));
    }
    let mut kept = Vec::new();
    let mut parts = RuleParts {
        crate_text: String::new(),
        count: None,
        until: None,
        freq: String::new(),
        interval: 1,
        byday: Vec::new(),
        wkst: "MO".into(),
        has_other_parts: false,
    };
    let mut seen: Vec<String> = Vec::new();
    for part in body.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| Error::rrule(format!("part `{}` has no `=`", truncate(part))))?;
        let key = key.trim().to_ascii_uppercase();
        let value = value.trim();
        if seen.contains(&key) {
            return Err(Error::rrule(format!("part `{key}` given twice")));
        }
        seen.push(key.clone());
        match key.as_str() {
            "COUNT" => {
                let n: u32 = value.parse().map_err(|_| {
                    Error::rrule(format!("COUNT `{}` is not a number", truncate(value)))
                })?;
                if n == 0 {
                    return Err(Error::rrule("COUNT must be at least 1"));
                }
                parts.count = Some(n);
            }
            "UNTIL" => parts.until = Some(parse_moment(value, "UNTIL")?),
            _ => {
                match key.as_str() {
                    "FREQ" => parts.freq = value.to_ascii_uppercase(),
                    "INTERVAL" => {
                        parts.interval = value.parse().map_err(|_| {
                            Error::rrule(format!("INTERVAL `{}` is not a number", truncate(value)))
                        })?;
                        if parts.interval == 0 {
                            return Err(Error::rrule("INTERVAL must be at least 1"));
                        }
                    }
                    "BYDAY" => {
                        parts.byday = value
                            .split(',')
                            .map(|d| d.trim().to_ascii_uppercase())
                            .collect();
                    }
                    "WKST" => parts.wkst = value.to_ascii_uppercase(),
                    _ => parts.has_other_parts = true,
                }
                kept.push(format!("{key}={value}"));
            }
        }
    }
    if parts.count.is_some() && parts.until.is_some() {
        return Err(Error::rrule("COUNT and UNTIL must not both be given"));
    }
    if parts.freq.is_empty() {
        return Err(Error::rrule("FREQ is missing"));
    }
    parts.crate_text = kept.join(";");
    Ok(parts)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Reads `YYYYMMDD`, `YYYYMMDDTHHMMSS` (wall) or `YYYYMMDDTHHMMSSZ` (UTC).
fn parse_moment(value: &str, what: &str) -> Result<Moment, Error> {
    let v = value.trim();
    let bad = || {
        Error::rrule(format!(
            "{what} `{}` is not an iCalendar date or date-time",
            truncate(v)
        ))
    };
    if let Some(utc) = v.strip_suffix('Z').or_else(|| v.strip_suffix('z')) {
        let naive = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
        return Ok(Moment::Utc(naive.and_utc().timestamp()));
    }
    if v.len() == 8 {
        let date = NaiveDate::parse_from_str(v, "%Y%m%d").map_err(|_| bad())?;
        return Ok(Moment::Wall(date.and_time(NaiveTime::MIN)));
    }
    let naive = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
    Ok(Moment::Wall(naive))
}

struct Property<'a> {
    name: String,
    params: Vec<(String, &'a str)>,
    value: &'a str,
}

fn split_property(line: &str) -> Result<Property<'_>, Error> {
    let (head, value) = line
        .split_once(':')
        .ok_or_else(|| Error::rrule(format!("line `{}` has no `:`", truncate(line))))?;
    let mut pieces = head.split(';');
    let name = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let mut params = Vec::new();
    for p in pieces {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::rrule(format!("parameter `{}` has no `=`", truncate(p))))?;
        params.push((k.trim().to_ascii_uppercase(), v.trim().trim_matches('"')));
    }
    Ok(Property {
        name,
        params,
        value: value.trim(),
    })
}

pub(super) fn parse_ical(text: &str, default_zone: Tz) -> Result<Recurrence, Error> {
    // Unfold continuation lines (RFC 5545 §3.1).
    let mut lines: Vec<String> = Vec::new();
    for raw in text.lines() {
        if let Some(rest) = raw.strip_prefix(' ').or_else(|| raw.strip_prefix('\t')) {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        lines.push(raw.trim_end_matches('\r').to_owned());
    }
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();

    let mut dtstart: Option<(Tz, NaiveDateTime, bool)> = None;
    for line in &lines {
        let prop = split_property(line)?;
        if prop.name == "DTSTART" {
            if dtstart.is_some() {
                return Err(Error::rrule("DTSTART given twice"));
            }
            let (zone, moment, date_only) = read_dated(&prop, default_zone)?;
            let naive = match moment {
                Moment::Wall(n) => n,
                Moment::Utc(t) => crate::time::naive_of_wall(t),
            };
            dtstart = Some((zone, naive, date_only));
        }
    }
    let (zone, start, date_only) = dtstart.ok_or_else(|| Error::rrule("DTSTART is missing"))?;
    let mut set = Recurrence::single(zone, start);
    set.date_only = date_only;
    for line in &lines {
        let prop = split_property(line)?;
        match prop.name.as_str() {
            "DTSTART" => {}
            "RRULE" => set.add_rrule(prop.value)?,
            "RDATE" | "EXDATE" => {
                let value_kind = param(&prop, "VALUE").unwrap_or("DATE-TIME");
                if value_kind.eq_ignore_ascii_case("PERIOD") {
                    return Err(Error::rrule("RDATE of VALUE=PERIOD is not supported"));
                }
                let zone_here = match param(&prop, "TZID") {
                    Some(name) => parse_zone(name)?,
                    None => zone,
                };
                for item in prop.value.split(',').filter(|s| !s.trim().is_empty()) {
                    let m = parse_moment(item, &prop.name)?;
                    let m = match m {
                        Moment::Wall(n) if zone_here != zone => {
                            // A wall time in another zone: fix it as an instant.
                            let t =
                                crate::time::resolve_naive(zone_here, n, Nonexistent::ShiftForward)
                                    .unwrap_or_default();
                            Moment::Utc(t)
                        }
                        other => other,
                    };
                    if prop.name == "RDATE" {
                        set.add_rdate(m);
                    } else {
                        set.add_exdate(m);
                    }
                }
            }
            other => {
                return Err(Error::rrule(format!(
                    "unsupported property `{}`",
                    truncate(other)
                )))
            }
        }
    }
    Ok(set)
}

fn param<'a>(prop: &Property<'a>, name: &str) -> Option<&'a str> {
    prop.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn read_dated(prop: &Property<'_>, default_zone: Tz) -> Result<(Tz, Moment, bool), Error> {
    let date_only = param(prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let moment = parse_moment(prop.value, &prop.name)?;
    let zone = match (param(prop, "TZID"), moment) {
        (Some(name), Moment::Utc(_)) => {
            return Err(Error::rrule(format!(
                "{} has both TZID `{}` and a UTC value",
                prop.name,
                truncate(name)
            )))
        }
        (Some(name), _) => parse_zone(name)?,
        (None, Moment::Utc(_)) => chrono_tz::UTC,
        (None, Moment::Wall(_)) => default_zone,
    };
    Ok((zone, moment, date_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_until_are_split_off() {
        let p = parse_rrule_parts("RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE").unwrap();
        assert_eq!(p.crate_text, "FREQ=WEEKLY;BYDAY=MO,WE");
        assert_eq!(p.count, Some(10));
        assert_eq!(p.byday, vec!["MO", "WE"]);
        assert!(!p.has_other_parts);
    }

    #[test]
    fn bad_parts_are_refused_with_rrule_invalid() {
        for bad in [
            "",
            "BYDAY=MO",
            "FREQ=DAILY;COUNT=x",
            "FREQ=DAILY;FREQ=DAILY",
            "FREQ=DAILY;COUNT=2;UNTIL=20240101",
            "FREQ=DAILY;UNTIL=2024",
        ] {
            let e = parse_rrule_parts(bad).unwrap_err();
            assert_eq!(e.code(), "rrule_invalid", "{bad}");
        }
    }

    #[test]
    fn unknown_tzid_is_unknown_zone() {
        let e = Recurrence::parse_ical(
            "DTSTART;TZID=Mars/Olympus:20240101T090000\nRRULE:FREQ=DAILY",
            chrono_tz::UTC,
        )
        .unwrap_err();
        assert_eq!(e.code(), "unknown_zone");
    }
}
