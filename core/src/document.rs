//! Reading documents that callers hand in (clinics, check requests,
//! policies, principals, targets): the size cap, UTF-8 decoding, JSON and
//! TOML parsing, and the one function that echoes caller text in a message.
//!
//! A parser's own message is never shown: it quotes values, keys and
//! numbers, any of which may be patient data. A parse error is rebuilt from
//! the parser's category (syntax, end of input, unknown field, wrong type
//! ...), its position (line and column) and the schema path
//! (`appointments[0].status`); map keys in the path are echoed through
//! [`echo_id`], and the key of an unknown field is never echoed.
//!
//! ```
//! use medsched_core::document::{echo_id, parse, Format};
//! use medsched_core::records::Clinic;
//!
//! let e = parse::<Clinic>(r#"{"resources": [{"id": "a", "zone": "UTC", "kind": "Dr Who"}]}"#, Format::Json)
//!     .unwrap_err();
//! assert_eq!(e.code(), "malformed_document");
//! assert_eq!(
//!     e.to_string(),
//!     "malformed json document: line 1 column 58: unknown variant at `resources[0].kind`"
//! );
//! assert_eq!(echo_id("dr-\u{1b}[2J"), "dr-\\u{1b}[2J");
//! ```

use serde::de::DeserializeOwned;

use crate::error::Error;

/// The largest document, in bytes, that any loader reads (16 MiB): the CLI
/// stops reading a file or standard input after this many bytes plus one,
/// and every loader refuses a longer text before parsing it
/// (`document_too_large`).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The most characters of caller text (an id, a file name) that a message
/// echoes; a longer text is cut and ends with `…`.
pub const ECHO_MAX_CHARS: usize = 80;

/// The format of a document.
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

    /// `json` or `toml`, as in [`Error::Malformed`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Toml => "toml",
        }
    }
}

/// Caller text as a message may show it: at most [`ECHO_MAX_CHARS`]
/// characters (then `…`), with control characters (ESC, BEL, newlines,
/// DEL ...), bidirectional and zero-width format characters and the
/// backslash escaped (`\u{1b}`, `\n`, `\\`), so no byte that moves a
/// terminal's cursor or hides text reaches it raw. Use it only for ids and
/// names; other caller text is not echoed at all.
pub fn echo_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(ECHO_MAX_CHARS) + 8);
    for (i, c) in s.chars().enumerate() {
        if i == ECHO_MAX_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Control characters, and format characters that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

/// Refuses a document longer than [`MAX_DOCUMENT_BYTES`].
///
/// # Errors
///
/// [`Error::DocumentTooLarge`].
pub fn check_size(len: usize) -> Result<(), Error> {
    if len > MAX_DOCUMENT_BYTES {
        Err(Error::DocumentTooLarge {
            limit: MAX_DOCUMENT_BYTES,
        })
    } else {
        Ok(())
    }
}

/// A document's bytes as text: refused when longer than
/// [`MAX_DOCUMENT_BYTES`] or not UTF-8. `format` names the document in the
/// error (`json`, `toml`, `icalendar`).
///
/// # Errors
///
/// [`Error::DocumentTooLarge`]; [`Error::Malformed`] with the line and
/// column of the first invalid byte.
pub fn decode<'a>(bytes: &'a [u8], format: &'static str) -> Result<&'a str, Error> {
    check_size(bytes.len())?;
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        // The prefix is valid UTF-8 by construction.
        let before = std::str::from_utf8(valid).unwrap_or_default();
        let (line, column) = position(before, before.len());
        Error::Malformed {
            format,
            detail: format!("line {line} column {column}: invalid utf-8"),
        }
    })
}

/// Parses a document into `T`.
///
/// # Errors
///
/// [`Error::DocumentTooLarge`]; [`Error::Malformed`] with the category,
/// the line and column, and the schema path, never the parser's text.
pub fn parse<T: DeserializeOwned>(text: &str, format: Format) -> Result<T, Error> {
    match format {
        Format::Json => parse_json(text),
        Format::Toml => parse_toml(text),
    }
}

/// Parses a JSON document into `T`.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    check_size(text.len())?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).and_then(|v| {
        // Trailing characters after the value are a syntax error.
        de.end()
            .map(|()| v)
            .map_err(|e| serde_path_to_error::Error::new(no_path(), e))
    });
    value.map_err(|e| {
        use serde_json::error::Category;
        let inner = e.inner();
        let what = match inner.classify() {
            Category::Syntax => "syntax error".to_owned(),
            Category::Eof => "unexpected end of input".to_owned(),
            Category::Io => "read error".to_owned(),
            Category::Data => {
                // serde_json's Display appends the position; drop it.
                let text = inner.to_string();
                let suffix = format!(" at line {} column {}", inner.line(), inner.column());
                data_error(text.strip_suffix(&suffix).unwrap_or(&text), e.path())
            }
        };
        malformed("json", inner.line(), inner.column(), &what)
    })
}

/// Parses a TOML document into `T`.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    check_size(text.len())?;
    let at = |e: &toml::de::Error| {
        e.span()
            .map_or((0, 0), |span| position(text, span.start.min(text.len())))
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| {
        let (line, column) = at(&e);
        malformed("toml", line, column, "syntax error")
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let (line, column) = at(e.inner());
        let what = data_error(e.inner().message(), e.path());
        malformed("toml", line, column, &what)
    })
}

fn no_path() -> serde_path_to_error::Path {
    serde_path_to_error::Track::new().path()
}

fn malformed(format: &'static str, line: usize, column: usize, what: &str) -> Error {
    let detail = if line == 0 {
        what.to_owned()
    } else {
        format!("line {line} column {column}: {what}")
    };
    Error::Malformed { format, detail }
}

/// One-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A data error (the document parses, but does not fit the schema) as its
/// category and place. The category is read from the start of serde's
/// message, whose wording serde fixes; nothing after it is shown, except
/// a missing or duplicate field's name when it is a plain schema name.
fn data_error(message: &str, path: &serde_path_to_error::Path) -> String {
    let (what, drop_last) = if message.starts_with("unknown field") {
        // The path ends with the unknown key itself: caller text.
        ("unknown field".to_owned(), true)
    } else if message.starts_with("unknown variant") {
        ("unknown variant".to_owned(), false)
    } else if message.starts_with("invalid type") {
        ("wrong type".to_owned(), false)
    } else if message.starts_with("invalid length") {
        ("wrong number of elements".to_owned(), false)
    } else if let Some(name) = schema_name(message, "missing field `") {
        (format!("missing field `{name}`"), false)
    } else if let Some(name) = schema_name(message, "duplicate field `") {
        (format!("duplicate field `{name}`"), false)
    } else if message.starts_with("duplicate key") {
        ("duplicate key".to_owned(), true)
    } else {
        ("invalid value".to_owned(), false)
    };
    let place = render_path(path, drop_last);
    if place.is_empty() {
        what
    } else {
        format!("{what} at `{place}`")
    }
}

/// The schema name in `` prefix`name` `` when the message is exactly that
/// and the name is a plain field name (serde's derive supplies it).
fn schema_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let name = message.strip_prefix(prefix)?.strip_suffix('`')?;
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    plain.then_some(name)
}

/// `appointments[0].status`; map keys through [`echo_id`], enum variants
/// and unknown segments left out.
fn render_path(path: &serde_path_to_error::Path, drop_last: bool) -> String {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let keep = if drop_last {
        segments.len().saturating_sub(1)
    } else {
        segments.len()
    };
    let mut out = String::new();
    for s in segments.iter().take(keep) {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&echo_id(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use medsched_storage::Clinic;

    fn json_err(text: &str) -> String {
        parse_json::<Clinic>(text).unwrap_err().to_string()
    }

    fn toml_err(text: &str) -> String {
        parse_toml::<Clinic>(text).unwrap_err().to_string()
    }

    #[test]
    fn echo_escapes_controls_and_cuts() {
        assert_eq!(echo_id("dr-a"), "dr-a");
        assert_eq!(echo_id("a\u{1b}[31mb\u{7}c"), "a\\u{1b}[31mb\\u{7}c");
        assert_eq!(echo_id("a\nb\\"), "a\\nb\\\\");
        assert_eq!(echo_id("x\u{202e}y"), "x\\u{202e}y");
        let long = "é".repeat(200);
        let e = echo_id(&long);
        assert_eq!(e.chars().count(), ECHO_MAX_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn json_errors_are_category_position_and_path() {
        let m = json_err(r#"{"appointments":[{"id":"a","resources":[],"status":"SECRET"}]}"#);
        assert_eq!(
            m,
            "malformed json document: line 1 column 59: unknown variant at `appointments[0].status`"
        );
        let m = json_err(r#"{"resources":[{"id":"a","zone":"UTC","SECRET":1}]}"#);
        assert_eq!(
            m,
            "malformed json document: line 1 column 45: unknown field at `resources[0]`"
        );
        let m = json_err(r#"{"resources":[{"id":12345,"zone":"UTC"}]}"#);
        assert!(m.ends_with("wrong type at `resources[0].id`"), "{m}");
        let m = json_err(r#"{"resources":[{"zone":"UTC"}]}"#);
        assert!(m.ends_with("missing field `id` at `resources[0]`"), "{m}");
        assert_eq!(
            json_err("{\"resources\": [}"),
            "malformed json document: line 1 column 16: syntax error"
        );
        assert!(json_err("{\"resources\": [").ends_with("unexpected end of input"));
        assert!(json_err("{} x").ends_with("syntax error"));
    }

    #[test]
    fn toml_errors_are_category_position_and_path() {
        let m = toml_err("[[appointments]]\nid = \"a\"\nresources = []\nstatus = \"SECRET\"\n");
        assert_eq!(
            m,
            "malformed toml document: line 4 column 10: unknown variant at `appointments[0].status`"
        );
        let m = toml_err("[[resources]]\nid = \"a\"\nzone = \"UTC\"\nSECRET = 1\n");
        assert!(m.ends_with("unknown field at `resources[0]`"), "{m}");
        assert_eq!(
            toml_err("reason = \"SECRET\" x\n"),
            "malformed toml document: line 1 column 19: syntax error"
        );
    }

    #[test]
    fn size_and_utf8_are_checked() {
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        assert_eq!(
            parse_json::<Clinic>(&big).unwrap_err().code(),
            "document_too_large"
        );
        assert_eq!(
            decode(big.as_bytes(), "json").unwrap_err().code(),
            "document_too_large"
        );
        let e = decode(b"{\n \"a\xff\"}", "json").unwrap_err();
        assert_eq!(e.code(), "malformed_document");
        assert_eq!(
            e.to_string(),
            "malformed json document: line 2 column 4: invalid utf-8"
        );
        assert_eq!(decode(b"ok", "json").unwrap(), "ok");
    }
}
