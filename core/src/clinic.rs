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
        Format::Json => serde_json::from_str(text).map_err(|e| Error::Malformed {
            format: "json",
            detail: crate::error::truncate(&e.to_string()),
        }),
        Format::Toml => toml::from_str(text).map_err(|e| Error::Malformed {
            format: "toml",
            detail: crate::error::truncate(&one_line(&e.to_string())),
        }),
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses and compiles a clinic document.
///
/// # Errors
///
/// As [`parse_clinic`] and [`crate::Schedule::new`].
pub fn load_schedule(text: &str, format: Format) -> Result<crate::Schedule, Error> {
    crate::Schedule::new(&parse_clinic(text, format)?)
}
