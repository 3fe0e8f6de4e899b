//! Shared presentation: an output buffer, local times, reasons as text and
//! JSON, CSV fields.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use medsched_core::Reason;
use serde_json::{json, Value};

/// Standard output of one command, written at once by `main` (so a closed
/// pipe is an error to handle, not a panic in `println!`).
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub(crate) text: String,
    /// Output written after `text`, straight to standard output (large
    /// listings are streamed, not held in memory).
    pub(crate) body: Option<Body>,
    /// Notes for standard error (`note: ...`), one per line.
    pub(crate) notes: Vec<String>,
    /// Exit status when the command succeeded (0, or 3 for conflicts).
    pub(crate) status: u8,
}

/// Writes streamed output to the writer it is given.
pub(crate) type WriteFn = dyn FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>;

/// A writer of streamed output.
pub(crate) struct Body(pub(crate) Box<WriteFn>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body(..)")
    }
}

impl Out {
    /// Appends one line.
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    /// Appends an empty line.
    pub(crate) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// Appends a JSON value, pretty-printed, and a newline.
    pub(crate) fn json(&mut self, v: &Value) {
        self.line(format!("{v:#}"));
    }
}

/// RFC 3339 UTC with `Z`, seconds always shown.
pub(crate) fn utc(t: DateTime<Utc>) -> String {
    medsched_core::time::format_utc(t.timestamp())
}

/// An instant in a zone.
pub(crate) fn local(t: DateTime<Utc>, zone: Tz) -> DateTime<Tz> {
    zone.from_utc_datetime(&t.naive_utc())
}

/// `Mon 2027-03-08 09:00 EST`.
pub(crate) fn local_long(t: DateTime<Utc>, zone: Tz) -> String {
    local(t, zone).format("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// `Mon 2027-03-08`.
pub(crate) fn day_label(d: NaiveDate) -> String {
    d.format("%a %Y-%m-%d").to_string()
}

/// `09:00`, with the zone abbreviation when asked (for days with two offsets).
pub(crate) fn hhmm(t: DateTime<Utc>, zone: Tz, with_zone: bool) -> String {
    let l = local(t, zone);
    if with_zone {
        l.format("%H:%M %Z").to_string()
    } else {
        l.format("%H:%M").to_string()
    }
}

/// An instant from seconds since the epoch.
pub(crate) fn instant(secs: i64) -> DateTime<Utc> {
    medsched_core::time::utc_of(secs)
}

/// `code: description`.
pub(crate) fn reason_line(r: &Reason) -> String {
    format!("{}: {}", r.code(), r.describe())
}

/// A reason as JSON: its serialized fields (with `code`) and a
/// `description`.
pub(crate) fn reason_json(r: &Reason) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({ "code": r.code() }));
    if let Some(map) = v.as_object_mut() {
        map.insert("description".into(), Value::String(r.describe()));
    } else {
        v = json!({ "code": r.code(), "description": r.describe() });
    }
    v
}

pub(crate) fn reasons_json(rs: &[Reason]) -> Value {
    Value::Array(rs.iter().map(reason_json).collect())
}

/// One CSV field: quoted when it holds a comma, quote or line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("dr-a"), "dr-a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn reasons_carry_code_and_description() {
        let v = reason_json(&Reason::Overlap {
            appointment: "a1".into(),
        });
        assert_eq!(v["code"], "overlap");
        assert_eq!(v["appointment"], "a1");
        assert_eq!(v["description"], "overlaps appointment `a1`");
    }
}
