//! The CLI's error: a core error, an I/O failure, or bad command-line input.
//! Each has a stable code (`docs/error-codes.md`) and maps to an exit status.

use std::fmt;
use std::process::ExitCode;

/// Exit status for an I/O failure (a file that cannot be read or written).
pub(crate) const EXIT_IO: u8 = 1;
/// Exit status for bad input: any core error code, a bad flag or timestamp.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit status of `check` when at least one occurrence conflicts.
pub(crate) const EXIT_CONFLICT: u8 = 3;
/// Exit status of a defect (`internal_error`: a caught panic).
pub(crate) const EXIT_INTERNAL: u8 = 4;

#[derive(Debug)]
pub(crate) enum CliError {
    /// An error from the scheduling core; its code is the core's.
    Core(medsched_core::Error),
    /// A file (or standard input/output) that cannot be read or written.
    Io { what: String, detail: String },
    /// A command-line value that cannot be read (`invalid_input`).
    Input(String),
}

impl CliError {
    /// The stable snake_case code printed as `error[<code>]`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            CliError::Core(e) => e.code(),
            CliError::Io { .. } => "io_error",
            CliError::Input(_) => "invalid_input",
        }
    }

    /// The process exit status for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Io { .. } => ExitCode::from(EXIT_IO),
            CliError::Core(e) if e.code() == "internal_error" => ExitCode::from(EXIT_INTERNAL),
            CliError::Core(_) | CliError::Input(_) => ExitCode::from(EXIT_INPUT),
        }
    }

    pub(crate) fn io(what: impl Into<String>, e: &std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            detail: io_detail(e),
        }
    }
}

impl From<medsched_core::Error> for CliError {
    fn from(e: medsched_core::Error) -> Self {
        CliError::Core(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            CliError::Core(e) => e.to_string(),
            CliError::Io { what, detail } => format!("cannot read {what}: {detail}"),
            CliError::Input(m) => m.clone(),
        };
        // One line, whatever a lower layer produced.
        f.write_str(&one_line(&text))
    }
}

/// The OS account of an I/O error, lowercased and without the Rust
/// `(os error N)` suffix.
fn io_detail(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text,
    };
    lower_first(&text)
}

/// Joins the non-empty lines of `s` with single spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// User input (an id, a file name, a flag's value) as a message shows it:
/// the core's id echo, cut to a readable length with control characters
/// escaped.
pub(crate) fn echo(s: &str) -> String {
    medsched_core::document::echo_id(s)
}

pub(crate) fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_one_lowercase_line() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = CliError::io("`x.json`", &e);
        assert_eq!(err.code(), "io_error");
        let m = err.to_string();
        assert!(m.starts_with("cannot read `x.json`: "), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn malformed_is_the_core_code() {
        let core = medsched_core::parse_clinic("{", medsched_core::Format::Json).unwrap_err();
        let err = CliError::from(core);
        assert_eq!(err.code(), "malformed_document");
        assert!(!err.to_string().contains('\n'));
    }
}
