//! Loading a whole clinic from one JSON or TOML document.

use medsched_storage::Clinic;

use crate::error::Error;

pub use crate::document::Format;

/// Parses a clinic document. Validation of references, zones and rules
/// happens in [`crate::Schedule::new`].
///
/// # Errors
///
/// As [`crate::document::parse`]: [`Error::DocumentTooLarge`], or
/// [`Error::Malformed`] with the category, position and schema path.
pub fn parse_clinic(text: &str, format: Format) -> Result<Clinic, Error> {
    crate::document::parse(text, format)
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
/// As [`crate::document::parse`].
pub fn parse_check_request(text: &str, format: Format) -> Result<CheckRequest, Error> {
    use crate::document::parse;
    // Parse the text again (not the value) so errors keep positions.
    let series = match format {
        Format::Json => parse::<serde_json::Value>(text, format)?
            .get("rrule")
            .is_some(),
        Format::Toml => parse::<toml::Table>(text, format)?.contains_key("rrule"),
    };
    if series {
        parse(text, format).map(CheckRequest::Series)
    } else {
        parse(text, format).map(CheckRequest::Single)
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
        assert!(
            e.to_string().ends_with("unknown field at `resources[0]`"),
            "{e}"
        );
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
