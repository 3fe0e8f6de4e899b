//! No PHI in any output: sentinel strings planted in every PHI field and in
//! each position of a malformed document (enum value, integer, key name,
//! escaped quotes, rule text, syntax) never appear in an error message, an
//! error's `Debug`, a request's or record's `Debug`, an outbox event or an
//! audit record.

use std::sync::Arc;

use medsched_core::document::{self, Format};
use medsched_core::policy::{Policy, Principal, Target};
use medsched_core::records::*;
use medsched_core::{
    load_schedule, parse_check_request, BookRequest, CancelReason, Engine, Error, ManualClock,
};

use crate::common::*;

/// Every planted value contains one of these.
const MARKS: [&str; 2] = ["SENTINEL", "98765432101"];

fn assert_clean(label: &str, text: &str) {
    for m in MARKS {
        assert!(!text.contains(m), "{label} shows `{m}`: {text}");
    }
    assert!(
        !text.chars().any(|c| c == '\u{1b}' || c == '\u{7}'),
        "{label} has a raw control character: {text:?}"
    );
}

fn assert_error_clean(label: &str, e: &Error) {
    assert_clean(label, &e.to_string());
    assert_clean(label, &format!("{e:?}"));
    assert!(!e.to_string().contains('\n'), "{label}: {e}");
}

/// (label, document, format, expected code) for the clinic loader: each
/// sentinel position, in JSON and in TOML.
fn clinic_cases() -> Vec<(&'static str, String, Format, &'static str)> {
    let hours = |rrule: &str| {
        format!(
            r#"{{"resources":[{{"id":"dr-a","zone":"UTC"}}],"working_hours":[{{"resource":"dr-a","dtstart":"2027-03-01T09:00:00","end":"12:00:00","rrule":"{rrule}"}}]}}"#
        )
    };
    let toml_hours = |rrule: &str| {
        format!(
            "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\n[[working_hours]]\nresource = \"dr-a\"\ndtstart = \"2027-03-01T09:00:00\"\nend = \"12:00:00\"\nrrule = \"{rrule}\"\n"
        )
    };
    let j = Format::Json;
    let t = Format::Toml;
    vec![
        (
            "json enum value",
            r#"{"appointments":[{"id":"a1","resources":[],"status":"SENTINEL1"}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json integer for a string",
            r#"{"resources":[{"id":98765432101,"zone":"UTC"}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json record number out of range",
            r#"{"resources":[{"id":"dr-a","zone":"UTC","capacity":98765432101}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json unknown key",
            r#"{"resources":[{"id":"dr-a","zone":"UTC","SENTINEL2":1}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json unknown top-level key",
            r#"{"SENTINEL2":1}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json escaped quotes in a wrong place",
            r#"{"resources":"a\"SENTINEL3\"b"}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json escaped quotes in an id of the wrong type",
            r#"{"resources":[{"id":["a\"SENTINEL3\"b"],"zone":"UTC"}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json phi field of the wrong type",
            r#"{"appointments":[{"id":"a1","resources":[],"reason":{"x":"SENTINEL-R"}}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json syntax",
            r#"{"resources":[SENTINEL5]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json timestamp",
            r#"{"appointments":[{"id":"a1","resources":[],"start":"SENTINEL6"}]}"#.into(),
            j,
            "malformed_document",
        ),
        (
            "json rule text",
            hours("FREQ=SENTINEL4"),
            j,
            "rrule_invalid",
        ),
        (
            "json rule value",
            hours("FREQ=DAILY;BYHOUR=SENTINEL4"),
            j,
            "rrule_invalid",
        ),
        (
            "json long rule",
            hours(&format!("FREQ=SENTINEL4{}", "X".repeat(100_000))),
            j,
            "rrule_invalid",
        ),
        (
            "toml enum value",
            "[[appointments]]\nid = \"a1\"\nresources = []\nstatus = \"SENTINEL1\"\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml integer for a string",
            "[[resources]]\nid = 98765432101\nzone = \"UTC\"\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml record number out of range",
            "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\ncapacity = 98765432101\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml unknown key",
            "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\nSENTINEL2 = 1\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml escaped quotes in a wrong place",
            "resources = \"a\\\"SENTINEL3\\\"b\"\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml syntax after a phi value",
            "[[appointments]]\nid = \"a1\"\nreason = \"SENTINEL-R\" x\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml bare word",
            "resources = SENTINEL5\n".into(),
            t,
            "malformed_document",
        ),
        (
            "toml rule text",
            toml_hours("FREQ=SENTINEL4"),
            t,
            "rrule_invalid",
        ),
    ]
}

#[test]
fn malformed_clinics_echo_no_planted_text() {
    for (label, text, format, code) in clinic_cases() {
        let e = load_schedule(&text, format).unwrap_err();
        assert_eq!(e.code(), code, "{label}: {e}");
        assert_error_clean(label, &e);
    }
}

#[test]
fn parse_errors_say_where() {
    let e = load_schedule(
        r#"{"appointments":[{"id":"a1","resources":[],"status":"SENTINEL1"}]}"#,
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed json document: line 1 column 63: unknown variant at `appointments[0].status`"
    );
    let e = load_schedule(
        "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\nSENTINEL2 = 1\n",
        Format::Toml,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed toml document: line 4 column 1: unknown field at `resources[0]`"
    );
}

#[test]
fn malformed_check_requests_echo_no_planted_text() {
    let cases: Vec<(&str, &str, Format)> = vec![
        (
            "json timestamp",
            r#"{"type":"visit","start":"SENTINEL6"}"#,
            Format::Json,
        ),
        (
            "json unknown key",
            r#"{"type":"visit","start":"2027-03-16T13:00:00Z","SENTINEL2":1}"#,
            Format::Json,
        ),
        (
            "json integer",
            r#"{"type":98765432101,"start":"2027-03-16T13:00:00Z"}"#,
            Format::Json,
        ),
        (
            "json escaped quotes",
            r#"{"type":"visit","start":"2027-03-16T13:00:00Z","resources":"a\"SENTINEL3\"b"}"#,
            Format::Json,
        ),
        (
            "json series enum",
            r#"{"type":"visit","zone":"UTC","dtstart":"2027-03-01T10:00:00","rrule":"FREQ=DAILY","nonexistent":"SENTINEL1"}"#,
            Format::Json,
        ),
        (
            "toml unknown key",
            "type = \"visit\"\nstart = \"2027-03-16T13:00:00Z\"\nSENTINEL2 = 1\n",
            Format::Toml,
        ),
        (
            "toml escaped quotes",
            "type = \"visit\"\nstart = \"a\\\"SENTINEL3\\\"b\"\n",
            Format::Toml,
        ),
    ];
    for (label, text, format) in cases {
        let e = parse_check_request(text, format).unwrap_err();
        assert_eq!(e.code(), "malformed_document", "{label}: {e}");
        assert_error_clean(label, &e);
    }
    // Rule text that parses as a document fails when the series is read.
    let clinic = load_schedule(
        include_str!("../../cli/tests/fixtures/tiny.json"),
        Format::Json,
    )
    .unwrap();
    let series =
        r#"{"type":"visit","zone":"UTC","dtstart":"2027-03-01T10:00:00","rrule":"FREQ=SENTINEL4"}"#;
    let Ok(medsched_core::CheckRequest::Series(s)) = parse_check_request(series, Format::Json)
    else {
        panic!("a series request");
    };
    let e = clinic
        .check_series(&s, t("2027-03-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(e.code(), "rrule_invalid");
    assert_error_clean("series rule text", &e);
}

#[test]
fn malformed_policies_principals_and_targets_echo_no_planted_text() {
    let policies = [
        "version = \"v\"\n[roles.a]\nSENTINEL2 = 1\n",
        "version = \"v\"\n[break_glass]\nmax_minutes = 98765432101\n",
        "version = [\"a\\\"SENTINEL3\\\"b\"]\n",
        "version = SENTINEL5\n",
        "version = \"v\"\n[roles.a]\ngrants = [{ action = 98765432101, scope = \"own\" }]\n",
    ];
    for text in policies {
        let e = Policy::from_toml(text).unwrap_err();
        assert_eq!(e.code(), "malformed_document", "{text}: {e}");
        assert_error_clean(text, &e);
    }
    let principals = [
        (r#"{"user":"u","tenant":"t","SENTINEL2":1}"#, Format::Json),
        (r#"{"user":98765432101,"tenant":"t"}"#, Format::Json),
        (
            r#"{"user":"u","tenant":"t","roles":"a\"SENTINEL3\"b"}"#,
            Format::Json,
        ),
        (
            r#"{"user":"u","tenant":"t","elevations":[{"patient":"p","reason":"SENTINEL-B","granted_at":"SENTINEL6","expires_at":"x"}]}"#,
            Format::Json,
        ),
        (
            "user = \"u\"\ntenant = \"t\"\nSENTINEL2 = 1\n",
            Format::Toml,
        ),
        (
            "user = \"u\"\ntenant = \"t\"\npatient = 98765432101\n",
            Format::Toml,
        ),
    ];
    for (text, format) in principals {
        let e = document::parse::<Principal>(text, format).unwrap_err();
        assert_eq!(e.code(), "malformed_document", "{text}: {e}");
        assert_error_clean(text, &e);
    }
    let targets = [
        (r#"{"tenant":"t","SENTINEL2":1}"#, Format::Json),
        (r#"{"tenant":"t","patient":98765432101}"#, Format::Json),
        (
            r#"{"tenant":"t","resources":"a\"SENTINEL3\"b"}"#,
            Format::Json,
        ),
        ("tenant = \"t\"\nSENTINEL2 = \"x\"\n", Format::Toml),
    ];
    for (text, format) in targets {
        let e = document::parse::<Target>(text, format).unwrap_err();
        assert_eq!(e.code(), "malformed_document", "{text}: {e}");
        assert_error_clean(text, &e);
    }
}

#[test]
fn echoed_ids_have_control_characters_escaped() {
    let text = "{\"resources\":[{\"id\":\"dr-a\",\"zone\":\"UTC\"}],\"working_hours\":[{\"resource\":\"ghost\\u001b]0;owned\\u0007\",\"dtstart\":\"2027-03-01T09:00:00\",\"end\":\"12:00:00\",\"rrule\":\"FREQ=DAILY\"}]}";
    let e = load_schedule(text, Format::Json).unwrap_err();
    assert_eq!(e.code(), "not_found");
    let m = e.to_string();
    assert!(m.contains("ghost\\u{1b}]0;owned\\u{7}"), "{m}");
    assert!(!m.contains('\u{1b}') && !m.contains('\u{7}'), "{m:?}");
    let e = load_schedule(
        "[[resources]]\nid = \"a\"\nzone = \"Mars/\\u001b[2J\"\n",
        Format::Toml,
    )
    .unwrap_err();
    assert_eq!(e.code(), "unknown_zone");
    assert_eq!(e.to_string(), "unknown time zone `Mars/\\u{1b}[2J`");
    let e = load_schedule(
        r#"{"resources":[{"id":"d\u0007","zone":"UTC"},{"id":"d\u0007","zone":"UTC"}]}"#,
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(e.code(), "duplicate_id");
    assert_eq!(e.to_string(), "duplicate resource id `d\\u{7}`");
    // A long id is cut.
    let long = "x".repeat(10_000);
    let e = load_schedule(
        &format!(r#"{{"resources":[{{"id":"a","zone":"{long}"}}]}}"#),
        Format::Json,
    )
    .unwrap_err();
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let big = format!(
        "{{\"resources\":[],\"x\":\"{}\"}}",
        "SENTINEL".repeat(document::MAX_DOCUMENT_BYTES / 8)
    );
    let e = load_schedule(&big, Format::Json).unwrap_err();
    assert_eq!(e.code(), "document_too_large");
    assert_error_clean("big clinic", &e);
    assert_eq!(
        Policy::from_toml(&big).unwrap_err().code(),
        "document_too_large"
    );
    assert_eq!(
        parse_check_request(&big, Format::Toml).unwrap_err().code(),
        "document_too_large"
    );
}

const NY: &str = "America/New_York";
const REASON: &str = "SENTINEL-R chest pain";
const NOTES: &str = "SENTINEL-N history";
const CANCEL_NOTE: &str = "SENTINEL-C moving to hospice";
const GLASS: &str = "SENTINEL-B unconscious in ER";

fn who(user: &str, role: &str) -> Principal {
    Principal {
        user: user.into(),
        tenant: "t1".into(),
        roles: vec![role.into()],
        resources: vec!["dr-a".into()],
        ..Principal::default()
    }
}

#[test]
fn phi_fields_never_reach_debug_events_audit_or_errors() {
    let policy = Policy::from_toml(include_str!("../../fixtures/policy-clinic.toml")).unwrap();
    let clock = Arc::new(ManualClock::new(t("2027-03-10T12:00:00Z")));
    let e = Engine::new(MemoryStore::new(), clock, policy);
    let admin = who("admin", "clinic_admin");
    let provider = who("dr-a-user", "provider");
    e.put_catalog(
        &admin,
        &clinic(
            vec![resource("dr-a", NY)],
            vec![hours(
                "dr-a",
                "2027-03-01T09:00",
                "17:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            )],
            vec![appt_type("visit", 30, 30)],
        ),
    )
    .unwrap();
    let req = BookRequest {
        type_id: "visit".into(),
        start: t("2027-03-16T14:00:00Z"),
        resources: vec!["dr-a".into()],
        patient: Some("p1".into()),
        reason: Some(REASON.into()),
        notes: Some(NOTES.into()),
        ..BookRequest::default()
    };
    assert_clean("BookRequest Debug", &format!("{req:?}"));
    assert!(format!("{req:?}").contains("<phi redacted>"));
    let booked = e.book(&provider, &req).unwrap();
    assert_clean("Booking Debug", &format!("{booked:?}"));
    let a = booked.appointment.clone();

    // A refused booking carries none of it either.
    let again = e.book(&provider, &req).unwrap_err();
    assert_error_clean("refused booking", &again);
    let unknown = e
        .book(
            &provider,
            &BookRequest {
                type_id: "SENTINEL-T".into(),
                ..req.clone()
            },
        )
        .unwrap_err();
    assert_eq!(unknown.code(), "not_found");

    // A free-text reason code is refused without being echoed.
    let bad = CancelReason::from_code(CANCEL_NOTE).unwrap_err();
    assert_eq!(bad.code(), "invalid_input");
    assert_error_clean("unknown reason code", &bad);

    let cancelled = e
        .cancel(
            &provider,
            a.appointment.id.as_str(),
            a.version,
            CancelReason::PatientRequest,
            Some(CANCEL_NOTE),
        )
        .unwrap();
    assert_clean("cancelled Debug", &format!("{cancelled:?}"));
    // The note is kept with the notes, readable by who may read PHI.
    let notes = cancelled.appointment.notes.as_ref().unwrap().0.clone();
    assert_eq!(notes, format!("{NOTES}\ncancellation note: {CANCEL_NOTE}"));
    let desk = e
        .appointment(&who("desk", "receptionist"), a.appointment.id.as_str())
        .unwrap();
    assert!(desk.appointment.notes.is_none() && desk.appointment.reason.is_none());

    let elevation = e.break_glass(&provider, "p1", GLASS, 30).unwrap();
    assert_clean("Elevation Debug", &format!("{elevation:?}"));
    let elevated = Principal {
        elevations: vec![elevation],
        ..provider.clone()
    };
    assert_clean("Principal Debug", &format!("{elevated:?}"));

    let events = e.claim_events(&admin, "w1", 100, 60).unwrap();
    assert!(events.iter().any(|ev| ev.kind == EventKind::Cancelled
        && ev.data.reason_code.as_deref() == Some("patient_request")));
    for ev in &events {
        assert_clean("event Debug", &format!("{ev:?}"));
        assert_clean("event JSON", &serde_json::to_string(ev).unwrap());
    }
    let audit = e.audit_trail(&who("aud", "auditor"), 1, 1000).unwrap();
    assert!(!audit.is_empty());
    for r in &audit {
        assert_clean("audit Debug", &format!("{r:?}"));
        assert_clean("audit JSON", &serde_json::to_string(r).unwrap());
    }
    // And the store's own view of the outbox, delivered or not.
    let tenant = TenantId("t1".into());
    let all = e
        .store()
        .claim_events(&tenant, "w2", 1000, t("2030-01-01T00:00:00Z"), 60)
        .unwrap();
    for ev in &all {
        assert_clean("stored event", &format!("{ev:?}"));
    }
}
