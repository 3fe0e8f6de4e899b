//! Reading the command line's values: files, timestamps, the clinic.

use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use medsched_core::document::{self, MAX_DOCUMENT_BYTES};
use medsched_core::{Format, Schedule};

use crate::error::{echo, CliError};

/// Reads a whole file as UTF-8 text (JSON, unless the name ends in
/// `.toml`), at most [`MAX_DOCUMENT_BYTES`]: a longer file (`/dev/zero`)
/// is `document_too_large` and invalid UTF-8 is `malformed_document`, both
/// bad input (exit 2).
pub(crate) fn read_file(path: &str) -> Result<String, CliError> {
    read_document(path, Format::from_path(path).name())
}

/// Reads a file, or standard input when `path` is absent or `-`, as
/// [`read_file`] does; `format` names the document in errors.
pub(crate) fn read_file_or_stdin(
    path: Option<&str>,
    format: &'static str,
) -> Result<String, CliError> {
    match path {
        Some(p) if p != "-" => read_document(p, format),
        _ => {
            let bytes = read_capped(std::io::stdin().lock())
                .map_err(|e| CliError::io("standard input", &e))?;
            text(&bytes, format)
        }
    }
}

fn read_document(path: &str, format: &'static str) -> Result<String, CliError> {
    let bytes = std::fs::File::open(path)
        .and_then(read_capped)
        .map_err(|e| CliError::io(format!("`{}`", echo(path)), &e))?;
    text(&bytes, format)
}

/// At most one byte more than the cap, so a longer input (`/dev/zero`)
/// is recognised without reading it all.
fn read_capped(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let cap = u64::try_from(MAX_DOCUMENT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    reader.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The core's size and UTF-8 checks: bad input, not an I/O failure.
fn text(bytes: &[u8], format: &'static str) -> Result<String, CliError> {
    Ok(document::decode(bytes, format)?.to_owned())
}

/// Reads and compiles a clinic file (TOML for `.toml`, JSON otherwise).
pub(crate) fn load_clinic(path: &str) -> Result<Schedule, CliError> {
    let text = read_file(path)?;
    Ok(medsched_core::load_schedule(
        &text,
        Format::from_path(path),
    )?)
}

/// Reads a timestamp flag: RFC 3339 with any offset, or a bare date meaning
/// 00:00 UTC of that date.
pub(crate) fn parse_instant(flag: &str, value: &str) -> Result<DateTime<Utc>, CliError> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(CliError::Input(format!(
        "invalid `{flag}` value `{}`: expected an RFC 3339 timestamp (`2027-03-01T09:00:00-05:00`) or a date (`2027-03-01`)",
        echo(value)
    )))
}

/// Reads an optional timestamp flag.
pub(crate) fn parse_opt_instant(
    flag: &str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, CliError> {
    value.map(|v| parse_instant(flag, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_take_any_offset_and_bare_dates() {
        let t = parse_instant("--from", "2027-03-01T09:00:00-05:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2027-03-01T14:00:00+00:00");
        let d = parse_instant("--from", "2027-03-01").unwrap();
        assert_eq!(d.to_rfc3339(), "2027-03-01T00:00:00+00:00");
        let e = parse_instant("--from", "yesterday").unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e
            .to_string()
            .starts_with("invalid `--from` value `yesterday`"));
    }

    #[test]
    fn toml_errors_do_not_quote_the_source() {
        let text = "[[appointments]]\nid = \"a1\"\nreason = \"SENTINEL\" x\n";
        let e = medsched_core::load_schedule(text, Format::Toml).unwrap_err();
        let m = CliError::from(e).to_string();
        assert!(
            m.starts_with("malformed toml document: line 3 column"),
            "{m}"
        );
        assert!(!m.contains("SENTINEL"), "{m}");
    }
}
