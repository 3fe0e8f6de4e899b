//! Arbitrary bytes as a JSON and as a TOML clinic document through
//! `parse_clinic`, `load_schedule` and `parse_check_request`.
//!
//! Checks: no panic; every error passes `check_error` (a code from
//! `Error::CODES`, one line); `load_schedule` fails exactly when parsing
//! or `Schedule::new` fails; a parsed clinic written back as JSON (and as
//! TOML, when TOML can hold it) parses to the same clinic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsched_core::{load_schedule, parse_check_request, parse_clinic, Format, Schedule};
use medsched_fuzz::check_error;

fn one(text: &str, format: Format) {
    let parsed = parse_clinic(text, format);
    let loaded = load_schedule(text, format);
    match &parsed {
        Err(e) => {
            check_error(e);
            let Err(l) = &loaded else {
                panic!("load_schedule accepts what parse_clinic refuses");
            };
            assert_eq!(l.code(), e.code());
        }
        Ok(clinic) => {
            match (Schedule::new(clinic), &loaded) {
                (Ok(_), Ok(_)) => {}
                (Err(a), Err(b)) => {
                    check_error(&a);
                    assert_eq!(a.code(), b.code());
                }
                (a, b) => panic!(
                    "Schedule::new and load_schedule disagree: {:?} / {:?}",
                    a.err(),
                    b.as_ref().err()
                ),
            }
            let json = match serde_json::to_string(clinic) {
                Ok(j) => j,
                Err(e) => panic!("a parsed clinic does not serialize: {e}"),
            };
            match parse_clinic(&json, Format::Json) {
                Ok(back) => assert_eq!(&back, clinic, "JSON round trip changes the clinic"),
                Err(e) => panic!("the clinic's own JSON is refused: {e}"),
            }
            if let Ok(toml_text) = toml::to_string(clinic) {
                match parse_clinic(&toml_text, Format::Toml) {
                    Ok(back) => assert_eq!(&back, clinic, "TOML round trip changes the clinic"),
                    Err(e) => panic!("the clinic's own TOML is refused: {e}"),
                }
            }
        }
    }
    if let Err(e) = parse_check_request(text, format) {
        check_error(&e);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    one(&text, Format::Json);
    one(&text, Format::Toml);
});
