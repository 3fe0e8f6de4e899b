//! Reading iCalendar recurrence lines. DTSTART, RDATE and EXDATE are read
//! here (so a DTSTART inside a DST gap is accepted); the RRULE value is
//! split into what the `rrule` crate expands and COUNT/UNTIL, which the
//! caller applies.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::{Moment, Recurrence};
use crate::error::Error;
use crate::time::{parse_zone, Nonexistent};

/// Longest RRULE value accepted, in bytes.
pub const MAX_RULE_BYTES: usize = 2048;
/// Most RDATE and EXDATE values of one set.
pub const MAX_DATES: usize = 100_000;
/// Most values in one BYxxx list.
pub const MAX_LIST_VALUES: usize = 400;

/// The frequencies of RFC 5545 §3.3.10, shortest first.
const FREQS: [&str; 7] = [
    "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
];

/// Weekday codes, Monday first.
pub(super) const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// One BYDAY entry: an optional ordinal and a weekday (Monday = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByDay {
    /// `-1` in `-1MO`; `None` for a plain weekday.
    pub nth: Option<i16>,
    /// Weekday, Monday = 0.
    pub weekday: u8,
}

/// An RRULE value, validated part by part and split for expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleParts {
    /// The rule without COUNT and UNTIL, rebuilt from the validated values,
    /// for the `rrule` crate.
    pub crate_text: String,
    /// COUNT, if given.
    pub count: Option<u32>,
    /// UNTIL, if given.
    pub until: Option<Moment>,
    /// FREQ, upper case.
    pub freq: String,
    /// INTERVAL (1 if absent).
    pub interval: u32,
    /// BYDAY entries as given (upper case, canonical), empty if absent.
    pub byday: Vec<String>,
    /// BYDAY entries, parsed.
    pub byday_parsed: Vec<ByDay>,
    /// WKST (`MO` if absent).
    pub wkst: String,
    /// Whether BYMONTH is given.
    pub has_bymonth: bool,
    /// The number of BYHOUR, BYMINUTE and BYSECOND values (0 if absent).
    pub time_lists: [usize; 3],
    /// Whether any part other than FREQ, INTERVAL, BYDAY, WKST, COUNT and
    /// UNTIL is present.
    pub has_other_parts: bool,
}

impl RuleParts {
    /// Seconds of one FREQ unit (a day for DAILY and longer; approximate
    /// for MONTHLY and YEARLY), times INTERVAL.
    pub fn period_secs(&self) -> i64 {
        let unit = match self.freq.as_str() {
            "SECONDLY" => 1,
            "MINUTELY" => 60,
            "HOURLY" => 3600,
            "DAILY" => 86_400,
            "WEEKLY" => 7 * 86_400,
            "MONTHLY" => 28 * 86_400,
            _ => 365 * 86_400,
        };
        unit * i64::from(self.interval)
    }

    /// The most occurrences one day can hold by BYHOUR, BYMINUTE and
    /// BYSECOND (the product of their list lengths; 1 without them).
    pub fn times_per_day(&self) -> usize {
        self.time_lists.iter().map(|n| (*n).max(1)).product()
    }
}

/// `part N (`KEY`)` for messages: the position and, for a known key, its
/// name. Values are never echoed (rule text may be anything).
fn at(index: usize, key: &str) -> String {
    format!("part {index} (`{key}`)")
}

/// Reads a signed or unsigned decimal of at most `digits` digits.
fn small_int(v: &str, signed: bool, digits: usize) -> Option<i32> {
    let (neg, body) = match v.as_bytes().first() {
        Some(b'-') if signed => (true, v.get(1..)?),
        Some(b'+') if signed => (false, v.get(1..)?),
        _ => (false, v),
    };
    if body.is_empty() || body.len() > digits || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = body.parse().ok()?;
    Some(if neg { -n } else { n })
}

/// The weekday (Monday = 0) of a two-letter code.
pub(super) fn weekday(code: &str) -> Option<u8> {
    WEEKDAYS.iter().position(|w| *w == code).map(|p| p as u8)
}

/// A comma list of integers in `range` (zero refused when `nonzero`).
fn int_list(
    value: &str,
    place: &str,
    range: std::ops::RangeInclusive<i32>,
    nonzero: bool,
) -> Result<Vec<i32>, Error> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.len() > MAX_LIST_VALUES {
        return Err(Error::rrule(format!(
            "{place} has more than {MAX_LIST_VALUES} values"
        )));
    }
    let signed = *range.start() < 0;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let n = small_int(item, signed, 3)
                .filter(|n| range.contains(n) && !(nonzero && *n == 0))
                .ok_or_else(|| {
                    Error::rrule(format!(
                        "{place} value {} is not a{} integer from {} to {}",
                        i + 1,
                        if nonzero { " nonzero" } else { "n" },
                        range.start(),
                        range.end()
                    ))
                })?;
            Ok(n)
        })
        .collect()
}

/// Splits and validates an RRULE value (`FREQ=WEEKLY;BYDAY=MO,WE`; a
/// leading `RRULE:` is allowed). Every part is checked here, against RFC
/// 5545 §3.3.10, before the `rrule` crate sees the rule: known part names
/// only, each once; numbers in their ranges; BYDAY ordinals only with
/// MONTHLY (±1 to 5) and YEARLY (±1 to 53, not with BYWEEKNO); the BYxxx
/// parts only with the frequencies that allow them. Messages name the
/// part by position and name, never its value.
///
/// # Errors
///
/// [`Error::RruleInvalid`] naming the part.
pub fn parse_rrule_parts(text: &str) -> Result<RuleParts, Error> {
    if text.len() > MAX_RULE_BYTES {
        return Err(Error::rrule(format!(
            "rule is longer than {MAX_RULE_BYTES} bytes"
        )));
    }
    if !text.is_ascii() {
        return Err(Error::rrule("rule contains characters other than ASCII"));
    }
    let body = text.trim();
    let body = strip_prefix_ci(body, "RRULE:").unwrap_or(body);
    if body.is_empty() {
        return Err(Error::rrule("empty rule"));
    }
    let mut parts = RuleParts {
        crate_text: String::new(),
        count: None,
        until: None,
        freq: String::new(),
        interval: 1,
        byday: Vec::new(),
        byday_parsed: Vec::new(),
        wkst: "MO".into(),
        has_bymonth: false,
        time_lists: [0; 3],
        has_other_parts: false,
    };
    // Validated BYxxx lists other than BYDAY, by canonical key.
    let mut lists: Vec<(&'static str, Vec<i32>)> = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    for (n, part) in body.split(';').filter(|p| !p.is_empty()).enumerate() {
        let index = n + 1;
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| Error::rrule(format!("part {index} has no `=`")))?;
        let key_upper = key.trim().to_ascii_uppercase();
        let value = value.trim();
        let key: &'static str = match KEYS.iter().find(|k| **k == key_upper) {
            Some(k) => k,
            None => return Err(Error::rrule(format!("part {index} is not an RRULE part"))),
        };
        if seen.contains(&key) {
            return Err(Error::rrule(format!("{} given twice", at(index, key))));
        }
        seen.push(key);
        let place = at(index, key);
        let upper = value.to_ascii_uppercase();
        match key {
            "FREQ" => {
                if !FREQS.contains(&upper.as_str()) {
                    return Err(Error::rrule(format!(
                        "{place} is not one of SECONDLY, MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY"
                    )));
                }
                parts.freq = upper;
            }
            "INTERVAL" => {
                parts.interval = small_int(value, false, 5)
                    .filter(|n| (1..=i32::from(u16::MAX)).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        Error::rrule(format!("{place} is not an integer from 1 to 65535"))
                    })?;
            }
            "COUNT" => {
                parts.count = Some(
                    small_int(value, false, 9)
                        .filter(|n| *n >= 1)
                        .map(|n| n as u32)
                        .ok_or_else(|| {
                            Error::rrule(format!("{place} is not an integer from 1 to 999999999"))
                        })?,
                );
            }
            "UNTIL" => parts.until = Some(parse_moment(value, &place)?),
            "WKST" => {
                weekday(&upper)
                    .ok_or_else(|| Error::rrule(format!("{place} is not a weekday code")))?;
                parts.wkst = upper;
            }
            "BYDAY" => {
                let items: Vec<&str> = upper.split(',').map(str::trim).collect();
                if items.len() > MAX_LIST_VALUES {
                    return Err(Error::rrule(format!(
                        "{place} has more than {MAX_LIST_VALUES} values"
                    )));
                }
                for (i, item) in items.iter().enumerate() {
                    let bad = || {
                        Error::rrule(format!(
                            "{place} value {} is not a weekday code with an optional ordinal",
                            i + 1
                        ))
                    };
                    let split = item.len().checked_sub(2).ok_or_else(bad)?;
                    let (num, code) = (item.get(..split).ok_or_else(bad)?, item.get(split..));
                    let wd = code.and_then(weekday).ok_or_else(bad)?;
                    let nth = if num.is_empty() {
                        None
                    } else {
                        let n = small_int(num, true, 2)
                            .filter(|n| *n != 0)
                            .ok_or_else(bad)?;
                        Some(n as i16)
                    };
                    parts.byday_parsed.push(ByDay { nth, weekday: wd });
                    parts.byday.push(match nth {
                        Some(n) => format!("{n}{}", WEEKDAYS.get(wd as usize).unwrap_or(&"MO")),
                        None => (*WEEKDAYS.get(wd as usize).unwrap_or(&"MO")).to_owned(),
                    });
                }
            }
            other => {
                let (range, nonzero) = match other {
                    "BYSECOND" => (0..=59, false),
                    "BYMINUTE" => (0..=59, false),
                    "BYHOUR" => (0..=23, false),
                    "BYMONTHDAY" => (-31..=31, true),
                    "BYYEARDAY" => (-366..=366, true),
                    "BYWEEKNO" => (-53..=53, true),
                    "BYMONTH" => (1..=12, false),
                    _ => (-366..=366, true), // BYSETPOS
                };
                let values = int_list(value, &place, range, nonzero)?;
                let slot = match other {
                    "BYHOUR" => Some(0),
                    "BYMINUTE" => Some(1),
                    "BYSECOND" => Some(2),
                    _ => None,
                };
                if let Some(x) = slot.and_then(|i| parts.time_lists.get_mut(i)) {
                    *x = values.len();
                }
                lists.push((other, values));
                parts.has_other_parts = true;
                parts.has_bymonth |= other == "BYMONTH";
            }
        }
    }
    if parts.freq.is_empty() {
        return Err(Error::rrule("FREQ is missing"));
    }
    if parts.count.is_some() && parts.until.is_some() {
        return Err(Error::rrule("COUNT and UNTIL must not both be given"));
    }
    check_combinations(&parts, &lists)?;
    let mut text = format!("FREQ={}", parts.freq);
    if parts.interval != 1 {
        text.push_str(&format!(";INTERVAL={}", parts.interval));
    }
    if seen.contains(&"WKST") {
        text.push_str(&format!(";WKST={}", parts.wkst));
    }
    if !parts.byday.is_empty() {
        text.push_str(&format!(";BYDAY={}", parts.byday.join(",")));
    }
    for (key, values) in &lists {
        let values: Vec<String> = values.iter().map(i32::to_string).collect();
        text.push_str(&format!(";{key}={}", values.join(",")));
    }
    parts.crate_text = text;
    Ok(parts)
}

/// The part names medsched reads (RFC 5545 §3.3.10 without x-names).
const KEYS: [&str; 14] = [
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "WKST",
    "BYDAY",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
];

/// The RFC 5545 rules on which BYxxx parts go with which frequency.
fn check_combinations(parts: &RuleParts, lists: &[(&'static str, Vec<i32>)]) -> Result<(), Error> {
    let freq = parts.freq.as_str();
    let has = |k: &str| lists.iter().any(|(key, _)| *key == k);
    let refuse = |key: &str| {
        Err(Error::rrule(format!(
            "`{key}` must not be used with FREQ={freq}"
        )))
    };
    if has("BYMONTHDAY") && freq == "WEEKLY" {
        return refuse("BYMONTHDAY");
    }
    if has("BYYEARDAY") && matches!(freq, "DAILY" | "WEEKLY" | "MONTHLY") {
        return refuse("BYYEARDAY");
    }
    if has("BYWEEKNO") && freq != "YEARLY" {
        return refuse("BYWEEKNO");
    }
    if has("BYSETPOS") {
        if lists.len() == 1 && parts.byday.is_empty() {
            return Err(Error::rrule(
                "`BYSETPOS` must be used with another BYxxx part",
            ));
        }
        let max = match freq {
            "MONTHLY" => 31,
            "WEEKLY" => 53,
            "HOURLY" => 24,
            "MINUTELY" | "SECONDLY" => 60,
            _ => 366,
        };
        let values = lists.iter().filter(|(k, _)| *k == "BYSETPOS");
        if values.flat_map(|(_, v)| v).any(|n| n.abs() > max) {
            return Err(Error::rrule(format!(
                "`BYSETPOS` with FREQ={freq} must be from -{max} to {max}"
            )));
        }
    }
    for d in &parts.byday_parsed {
        let Some(n) = d.nth else { continue };
        let max = match freq {
            "MONTHLY" => 5,
            "YEARLY" if has("BYWEEKNO") => {
                return Err(Error::rrule(
                    "a `BYDAY` ordinal must not be used with `BYWEEKNO`",
                ))
            }
            "YEARLY" => 53,
            _ => {
                return Err(Error::rrule(format!(
                    "a `BYDAY` ordinal must not be used with FREQ={freq}"
                )))
            }
        };
        if n.abs() > max {
            return Err(Error::rrule(format!(
                "a `BYDAY` ordinal with FREQ={freq} must be from -{max} to {max}"
            )));
        }
    }
    Ok(())
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
    let bad = || Error::rrule(format!("{what} is not an iCalendar date or date-time"));
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
        .ok_or_else(|| Error::rrule("a line has no `:`"))?;
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
            .ok_or_else(|| Error::rrule("a parameter has no `=`"))?;
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
    let (mut rdates, mut exdates) = (Vec::new(), Vec::new());
    for (n, line) in lines.iter().enumerate() {
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
                    if rdates.len() + exdates.len() >= MAX_DATES {
                        return Err(Error::rrule(format!(
                            "more than {MAX_DATES} RDATE and EXDATE values"
                        )));
                    }
                    if prop.name == "RDATE" {
                        rdates.push(m);
                    } else {
                        exdates.push(m);
                    }
                }
            }
            _ => {
                return Err(Error::rrule(format!(
                    "property {} is not DTSTART, RRULE, RDATE or EXDATE",
                    n + 1
                )))
            }
        }
    }
    set.add_rdates(rdates);
    set.add_exdates(exdates);
    Ok(set)
}

fn param<'a>(prop: &Property<'a>, name: &str) -> Option<&'a str> {
    prop.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn read_dated(prop: &Property<'_>, default_zone: Tz) -> Result<(Tz, Moment, bool), Error> {
    let date_only = param(prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let moment = parse_moment(prop.value, &prop.name)?;
    let zone = match (param(prop, "TZID"), moment) {
        (Some(_), Moment::Utc(_)) => {
            return Err(Error::rrule(format!(
                "{} has both TZID and a UTC value",
                prop.name
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
