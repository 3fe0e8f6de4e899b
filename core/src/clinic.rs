//! Loading a whole clinic from one JSON or TOML document.

use medsched_storage::Clinic;

use crate::error::Error;

/// The format of a clinic document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// The format a file name implies: `.toml` is TOML, anything else JSON.
    pub fn from_path(path: &str) -> Self {
        if path.to_ascii_lowercase().ends_with(".toml") {
            Format::Toml
        } else {
            Format::Json
        }
    }
}

/// Parses a clinic document. Validation of references, zones and rules
/// happens in [`crate::Schedule::new`].
///
/// # Errors
///
/// [`Error::Malformed`] with the parser's line and column.
pub fn parse_clinic(text: &str, format: Format) -> Result<Clinic, Error> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| json_error(&e)),
        Format::Toml => toml::from_str(text).map_err(|e| toml_error(&e, text)),
    }
}

/// A JSON parse error as [`Error::Malformed`]: position first, quoted
/// values removed (they may be patient data).
pub(crate) fn json_error(e: &serde_json::Error) -> Error {
    let msg = e.to_string();
    // serde_json appends " at line L column C"; keep the message before it.
    let core = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(m, _)| m);
    let detail = if e.line() == 0 {
        scrub(core)
    } else {
        format!("line {} column {}: {}", e.line(), e.column(), scrub(core))
    };
    Error::Malformed {
        format: "json",
        detail,
    }
}

/// A TOML parse error as [`Error::Malformed`]: position and message only,
/// never the quoted source line (it may hold patient data).
pub(crate) fn toml_error(e: &toml::de::Error, text: &str) -> Error {
    let (line, column) = e
        .span()
        .map(|span| {
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        })
        .unwrap_or((0, 0));
    Error::Malformed {
        format: "toml",
        detail: format!("line {line} column {column}: {}", scrub(e.message())),
    }
}

/// One line, quoted values replaced by `…`, bounded length. Field names
/// (in backticks) stay: they are schema, not data.
pub(crate) fn scrub(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut in_quotes = false;
    for c in line.chars() {
        if c == '"' {
            if !in_quotes {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    // serde names Rust types ("expected struct Proposal"); say what they are.
    let out = out
        .replace("struct SeriesProposal", "a series proposal")
        .replace("struct Proposal", "a proposal")
        .replace("struct ", "an object ");
    crate::error::truncate(out.trim_end_matches('.'))
}

/// What a conflict check is asked about: one appointment or a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckRequest {
    /// One proposed appointment.
    Single(crate::Proposal),
    /// A proposed recurring series.
    Series(crate::SeriesProposal),
}

/// Parses a proposal document: a series when it has an `rrule` key, else a
/// single appointment.
///
/// # Errors
///
/// [`Error::Malformed`] with the position.
pub fn parse_check_request(text: &str, format: Format) -> Result<CheckRequest, Error> {
    match format {
        Format::Json => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            // Parse the text again (not the value) so errors keep positions.
            if v.get("rrule").is_some() {
                serde_json::from_str(text)
                    .map(CheckRequest::Series)
                    .map_err(|e| json_error(&e))
            } else {
                serde_json::from_str(text)
                    .map(CheckRequest::Single)
                    .map_err(|e| json_error(&e))
            }
        }
        Format::Toml => {
            let t: toml::Table = toml::from_str(text).map_err(|e| toml_error(&e, text))?;
            if t.contains_key("rrule") {
                toml::from_str(text)
                    .map(CheckRequest::Series)
                    .map_err(|e| toml_error(&e, text))
            } else {
                toml::from_str(text)
                    .map(CheckRequest::Single)
                    .map_err(|e| toml_error(&e, text))
            }
        }
    }
}

/// Parses and compiles a clinic document.
///
/// # Errors
///
/// As [`parse_clinic`] and [`crate::Schedule::new`].
pub fn load_schedule(text: &str, format: Format) -> Result<crate::Schedule, Error> {
    crate::Schedule::new(&parse_clinic(text, format)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_carry_position_but_no_quoted_values() {
        let toml_text = "[[appointments]]\nid = \"a1\"\nreason = \"SENTINEL\" x\n";
        let e = parse_clinic(toml_text, Format::Toml).unwrap_err();
        let m = e.to_string();
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("line 3"), "{m}");
        let json = r#"{"appointments":[{"id":"a1","resources":[],"reason":{"x":"SENTINEL"}}]}"#;
        let e = parse_clinic(json, Format::Json).unwrap_err();
        let m = e.to_string();
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(
            m.starts_with("malformed json document: line 1 column"),
            "{m}"
        );
        let e = parse_clinic(
            r#"{"resources":[{"id":"a","zone":"UTC","colour":1}]}"#,
            Format::Json,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn check_requests_are_told_apart_by_rrule() {
        let single = r#"{"type":"visit","start":"2027-03-16T13:00:00Z"}"#;
        assert!(matches!(
            parse_check_request(single, Format::Json),
            Ok(CheckRequest::Single(_))
        ));
        let series = "type = \"visit\"\nzone = \"UTC\"\ndtstart = \"2027-03-16T13:00:00\"\nrrule = \"FREQ=DAILY;COUNT=2\"\n";
        assert!(matches!(
            parse_check_request(series, Format::Toml),
            Ok(CheckRequest::Series(_))
        ));
        let bad = r#"{"type":"visit","start":"yesterday"}"#;
        assert_eq!(
            parse_check_request(bad, Format::Json).unwrap_err().code(),
            "malformed_document"
        );
    }
}
