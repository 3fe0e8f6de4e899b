#![cfg(test)]
//! Runs the built `medsched` binary on small clinic files in
//! `tests/fixtures/` and checks its output, exit status and error lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

fn medsched(args: &[&str]) -> Output {
    medsched_stdin(args, None)
}

fn medsched_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medsched"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("medsched runs");
    if let Some(text) = stdin {
        // A command that fails before reading its input closes the pipe.
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Exit status `status`, nothing on stdout, one `error[code]: message` line
/// on stderr with a lowercase message, and no panic.
fn assert_error(o: &Output, code: &str, status: i32) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(o.status.code(), Some(status), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    let prefix = format!("error[{code}]: ");
    assert!(err.starts_with(&prefix), "expected {prefix}…, got {err:?}");
    let first = err[prefix.len()..].chars().next().unwrap();
    assert!(!first.is_uppercase(), "message starts lowercase: {err}");
    assert!(stdout(o).is_empty(), "no output on error: {}", stdout(o));
}

fn tiny_slots(clinic: &str, extra: &[&str]) -> Output {
    let file = fixture(clinic);
    let mut args = vec![
        "slots",
        file.as_str(),
        "--type",
        "visit",
        "--from",
        "2027-03-12",
        "--to",
        "2027-03-16",
    ];
    args.extend_from_slice(extra);
    medsched(&args)
}

/// dr-a works Mon-Fri 09:00-12:00 New York time; `visit` is 30 minutes on
/// a 15-minute grid, so 09:00..11:30 are the starts of a free day (11).
/// Friday 2027-03-12 is EST (UTC-5); the clocks change on Sunday; Monday
/// 2027-03-15 is EDT (UTC-4) and appointment `a1` holds 10:00-10:30, which
/// rules out 09:45, 10:00 and 10:15.
const TINY_CSV: &[&str] = &[
    "dr-a,2027-03-12T14:00:00Z",
    "dr-a,2027-03-12T14:15:00Z",
    "dr-a,2027-03-12T14:30:00Z",
    "dr-a,2027-03-12T14:45:00Z",
    "dr-a,2027-03-12T15:00:00Z",
    "dr-a,2027-03-12T15:15:00Z",
    "dr-a,2027-03-12T15:30:00Z",
    "dr-a,2027-03-12T15:45:00Z",
    "dr-a,2027-03-12T16:00:00Z",
    "dr-a,2027-03-12T16:15:00Z",
    "dr-a,2027-03-12T16:30:00Z",
    "dr-a,2027-03-15T13:00:00Z",
    "dr-a,2027-03-15T13:15:00Z",
    "dr-a,2027-03-15T13:30:00Z",
    "dr-a,2027-03-15T14:30:00Z",
    "dr-a,2027-03-15T14:45:00Z",
    "dr-a,2027-03-15T15:00:00Z",
    "dr-a,2027-03-15T15:15:00Z",
    "dr-a,2027-03-15T15:30:00Z",
];

#[test]
fn slots_csv_exact_lines_across_dst() {
    let o = tiny_slots("tiny.json", &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), TINY_CSV);
    assert!(stderr(&o).is_empty());
}

#[test]
fn slots_from_toml_clinic_match_json() {
    let o = tiny_slots("tiny.toml", &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), TINY_CSV);
}

#[test]
fn slots_accept_any_offset_and_now() {
    // The same window written with New York offsets, seen from earlier.
    let file = fixture("tiny.json");
    let o = medsched(&[
        "slots",
        &file,
        "--type",
        "visit",
        "--from",
        "2027-03-11T19:00:00-05:00",
        "--to",
        "2027-03-15T20:00:00-04:00",
        "--now",
        "2027-01-01",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), TINY_CSV);
    // `now` defaults to --from: a later --from drops nothing, a later --now does.
    let o = tiny_slots(
        "tiny.json",
        &["--format", "csv", "--now", "2027-03-15T14:50:00Z"],
    );
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        &TINY_CSV[TINY_CSV.len() - 3..]
    );
}

#[test]
fn slots_text_groups_by_local_day() {
    let o = tiny_slots("tiny.json", &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("19 bookable starts"), "{out}");
    assert!(out.contains("dr-a (America/New_York)"), "{out}");
    let fri = out.lines().find(|l| l.contains("Fri 2027-03-12")).unwrap();
    assert!(
        fri.contains("09:00 09:15") && fri.ends_with("11:30"),
        "{fri}"
    );
    let mon = out.lines().find(|l| l.contains("Mon 2027-03-15")).unwrap();
    assert!(mon.contains("09:30 10:30"), "{mon}");
}

#[test]
fn slots_json_has_resource_start_end() {
    let o = tiny_slots("tiny.json", &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), TINY_CSV.len());
    assert_eq!(items[0]["resource"], "dr-a");
    assert_eq!(items[0]["start"], "2027-03-12T14:00:00Z");
    assert_eq!(items[0]["end"], "2027-03-12T14:30:00Z");
}

fn explain(at: &str, format: &str) -> Output {
    let file = fixture("tiny.json");
    medsched(&[
        "explain",
        &file,
        "--type",
        "visit",
        "--resource",
        "dr-a",
        "--at",
        at,
        "--now",
        "2027-03-01",
        "--format",
        format,
    ])
}

#[test]
fn explain_names_the_reason_code() {
    let o = explain("2027-03-15T14:15:00Z", "text");
    assert_eq!(o.status.code(), Some(0), "exit 0 even when not bookable");
    let out = stdout(&o);
    assert!(out.contains("not bookable"), "{out}");
    assert!(out.contains("overlap: overlaps appointment `a1`"), "{out}");
    assert!(out.contains("Mon 2027-03-15 10:15 EDT"), "{out}");

    let o = explain("2027-03-13T15:00:00Z", "text");
    assert!(stdout(&o).contains("outside_hours"), "{}", stdout(&o));

    let o = explain("2027-03-15T13:00:00Z", "text");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(": bookable"), "{}", stdout(&o));
}

#[test]
fn explain_json_carries_codes_and_descriptions() {
    let o = explain("2027-03-15T14:15:00Z", "json");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["bookable"], false);
    assert_eq!(v["reasons"][0]["code"], "overlap");
    assert_eq!(v["reasons"][0]["appointment"], "a1");
    assert_eq!(v["reasons"][0]["description"], "overlaps appointment `a1`");
}

#[test]
fn check_series_reports_each_occurrence_and_exits_3() {
    for file in ["series.json", "series.toml"] {
        let clinic = fixture("tiny.json");
        let series = fixture(file);
        let o = medsched(&["check", &clinic, &series, "--now", "2027-02-01"]);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.contains(&"2027-03-01T15:00:00Z  Mon 2027-03-01 10:00 EST  bookable  dr-a"),
            "{out}"
        );
        assert!(
            lines.contains(&"2027-03-08T15:00:00Z  Mon 2027-03-08 10:00 EST  bookable  dr-a"),
            "{out}"
        );
        assert!(
            lines.contains(&"2027-03-15T14:00:00Z  Mon 2027-03-15 10:00 EDT  conflict"),
            "{out}"
        );
        assert!(
            lines.contains(&"    dr-a  overlap: overlaps appointment `a1`"),
            "{out}"
        );
        assert_eq!(lines.last(), Some(&"1 of 3 occurrences conflict"));
    }
}

#[test]
fn check_json_and_a_free_proposal() {
    let clinic = fixture("tiny.json");
    let series = fixture("series.json");
    let o = medsched(&[
        "check",
        &clinic,
        &series,
        "--now",
        "2027-02-01",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kind"], "series");
    assert_eq!(v["total"], 3);
    assert_eq!(v["conflicting"], 1);
    assert_eq!(
        v["occurrences"][2]["conflicts"][0]["reasons"][0]["code"],
        "overlap"
    );

    let free = fixture("proposal-free.json");
    let o = medsched(&["check", &clinic, &free, "--now", "2027-02-01"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("bookable  dr-a"), "{out}");
    assert_eq!(out.lines().last(), Some("0 of 1 occurrence conflicts"));
}

#[test]
fn expand_shifts_a_dtstart_in_the_gap_forward() {
    let ics = fixture("dst-gap.ics");
    let o = medsched(&["expand", &ics]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        ["2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"]
    );
}

#[test]
fn expand_skip_nonexistent_drops_it_and_reads_stdin() {
    // RFC 5545 §3.3.10: a generated time in the gap is dropped and not
    // counted toward COUNT.
    let text = "DTSTART;TZID=America/New_York:20240309T023000\nRRULE:FREQ=DAILY;COUNT=3\n";
    let o = medsched_stdin(&["expand", "--skip-nonexistent"], Some(text));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            "2024-03-09T02:30:00-05:00",
            "2024-03-11T02:30:00-04:00",
            "2024-03-12T02:30:00-04:00"
        ]
    );
    // DTSTART itself is always kept, read with the offset before the gap.
    let text = std::fs::read_to_string(fixture("dst-gap.ics")).unwrap();
    let o = medsched_stdin(&["expand", "--skip-nonexistent"], Some(&text));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        ["2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"]
    );
}

#[test]
fn expand_notes_truncation_on_stderr() {
    let text = "DTSTART;TZID=Europe/Berlin:20270301T090000\nRRULE:FREQ=DAILY\nEXDATE;TZID=Europe/Berlin:20270302T090000\n";
    let o = medsched_stdin(&["expand", "--limit", "3"], Some(text));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            "2027-03-01T09:00:00+01:00",
            "2027-03-03T09:00:00+01:00",
            "2027-03-04T09:00:00+01:00"
        ]
    );
    assert_eq!(
        stderr(&o).trim_end(),
        "note: stopped after 3 occurrences (--limit)"
    );
}

#[test]
fn expand_window_and_floating_zone() {
    let text = "DTSTART:20270310T090000\nRRULE:FREQ=DAILY;COUNT=10\n";
    let o = medsched_stdin(
        &[
            "expand",
            "--tz",
            "America/New_York",
            "--from",
            "2027-03-13T00:00:00Z",
            "--to",
            "2027-03-15",
        ],
        Some(text),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        ["2027-03-13T09:00:00-05:00", "2027-03-14T09:00:00-04:00"]
    );
}

#[test]
fn bad_clinic_files_give_their_codes() {
    for (file, code) in [
        ("bad-zone.json", "unknown_zone"),
        ("bad-rrule.json", "rrule_invalid"),
        ("bad-appointment.json", "end_before_start"),
        ("unknown-ref.json", "not_found"),
        ("malformed.json", "malformed_document"),
    ] {
        let o = tiny_slots(file, &[]);
        assert_error(&o, code, 2);
    }
}

#[test]
fn unreadable_files_are_io_errors() {
    assert_error(&tiny_slots("no-such-clinic.json", &[]), "io_error", 1);
    let clinic = fixture("tiny.json");
    let missing = fixture("no-such-proposal.json");
    assert_error(&medsched(&["check", &clinic, &missing]), "io_error", 1);
    assert_error(&medsched(&["expand", &missing]), "io_error", 1);
    // A directory is not a readable file either.
    let dir = fixture("");
    assert_error(&tiny_slots(&dir, &[]), "io_error", 1);
}

#[test]
fn bad_command_line_values_give_their_codes() {
    let file = fixture("tiny.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--from", "yesterday"], "invalid_input"),
        (vec!["--now", "2027-03-15T25:00:00Z"], "invalid_input"),
        (vec!["--to", "2027-03-01"], "end_before_start"),
        (vec!["--to", "2029-01-01"], "window_too_large"),
        (vec!["--type", "nope"], "not_found"),
        (vec!["--resource", "dr-nobody"], "not_found"),
        (vec!["--format", "xml"], "invalid_input"),
        (vec!["--bogus"], "invalid_input"),
    ];
    for (extra, code) in cases {
        let mut args = vec![
            "slots",
            file.as_str(),
            "--type",
            "visit",
            "--from",
            "2027-03-12",
            "--to",
            "2027-03-16",
        ];
        // A later flag of the same name replaces the earlier one.
        for pair in extra.chunks(2) {
            if let Some(pos) = args.iter().position(|a| *a == pair[0]) {
                if pair.len() == 2 {
                    args[pos + 1] = pair[1];
                    continue;
                }
            }
            args.extend_from_slice(pair);
        }
        assert_error(&medsched(&args), code, 2);
    }
    let o = medsched(&[
        "explain",
        &file,
        "--type",
        "visit",
        "--resource",
        "dr-nobody",
        "--at",
        "2027-03-15T14:00:00Z",
    ]);
    assert_error(&o, "not_found", 2);
    let o = medsched(&[
        "explain",
        &file,
        "--type",
        "visit",
        "--resource",
        "dr-a",
        "--at",
        "tomorrow",
    ]);
    assert_error(&o, "invalid_input", 2);
}

#[test]
fn bad_proposals_give_their_codes() {
    let clinic = fixture("tiny.json");
    for (file, code) in [
        ("proposal-unknown-field.json", "malformed_document"),
        ("malformed.json", "malformed_document"),
        ("series-bad-rrule.json", "rrule_invalid"),
    ] {
        let f = fixture(file);
        assert_error(&medsched(&["check", &clinic, &f]), code, 2);
    }
}

#[test]
fn bad_recurrences_give_their_codes() {
    let gap = std::fs::read_to_string(fixture("dst-gap.ics")).unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "DTSTART;TZID=Mars/Base:20270301T090000\nRRULE:FREQ=DAILY\n",
            vec![],
            "unknown_zone",
        ),
        (gap.as_str(), vec!["--tz", "Mars/Base"], "unknown_zone"),
        (
            "DTSTART;TZID=Europe/Berlin:20270301T090000\nRRULE:FREQ=FORTNIGHTLY\n",
            vec![],
            "rrule_invalid",
        ),
        ("not a recurrence\n", vec![], "rrule_invalid"),
        (
            gap.as_str(),
            vec!["--from", "2024-04-01", "--to", "2024-03-01"],
            "end_before_start",
        ),
        (gap.as_str(), vec!["--from", "soon"], "invalid_input"),
        (gap.as_str(), vec!["--limit", "0"], "invalid_input"),
        (gap.as_str(), vec!["--limit", "many"], "invalid_input"),
    ];
    for (text, extra, code) in cases {
        let mut args = vec!["expand"];
        args.extend(extra);
        assert_error(&medsched_stdin(&args, Some(text)), code, 2);
    }
}

#[test]
fn help_documents_exit_codes() {
    for args in [vec!["--help"], vec!["check", "--help"]] {
        let o = medsched(&args);
        assert_eq!(o.status.code(), Some(0));
        let out = stdout(&o);
        assert!(out.contains("Exit status:"), "{out}");
        assert!(out.contains("3  `check` only"), "{out}");
    }
    let o = medsched(&["slots", "--help"]);
    assert!(stdout(&o).contains("Defaults to --from"), "{}", stdout(&o));
}

#[test]
fn demo_covers_every_day_of_the_fortnight() {
    let o = medsched(&["demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty());
    let out = stdout(&o);
    for day in 8..=21 {
        let date = format!("2027-03-{day:02}");
        assert!(
            out.lines().any(|l| l.trim_start().contains(&date)),
            "no line for {date}"
        );
    }
    // Three providers, each with a line for every day.
    for provider in ["dr-ames", "dr-baker", "dr-weber"] {
        assert!(out.lines().any(|l| l.starts_with(provider)), "{provider}");
    }
    let day_lines = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" 2027-03-"))
        .count();
    assert!(day_lines >= 3 * 14, "{day_lines}");
    assert!(out.contains("clocks change EST -> EDT"), "{out}");
    assert!(
        out.contains("buffer: buffer overlaps appointment `appt-1`"),
        "{out}"
    );
    assert!(
        out.contains("overlap: overlaps appointment `appt-1`"),
        "{out}"
    );
}

#[test]
fn demo_clinic_is_the_golden_fixture() {
    assert_eq!(
        include_str!("../src/demo_clinic.json"),
        include_str!("../../fixtures/demo-clinic.json"),
        "cli/src/demo_clinic.json and fixtures/demo-clinic.json must be identical"
    );
}

#[test]
fn malformed_toml_clinic_does_not_echo_patient_data() {
    let o = tiny_slots("phi-malformed.toml", &[]);
    assert_error(&o, "malformed_document", 2);
    let err = stderr(&o);
    assert!(!err.contains("SENTINEL"), "{err}");
    assert!(err.contains("line 8 column 32"), "{err}");
}

// --- `medsched policy` -----------------------------------------------------

/// The shipped example policy at the workspace root.
fn clinic_policy() -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "fixtures",
        "policy-clinic.toml",
    ]
    .iter()
    .collect();
    p.to_string_lossy().into_owned()
}

fn policy_fixture(name: &str) -> String {
    fixture(&format!("policy/{name}"))
}

const CLINIC_ROLES: [&str; 8] = [
    "auditor",
    "clinic_admin",
    "guardian",
    "nurse",
    "patient",
    "provider",
    "receptionist",
    "scheduler",
];

#[test]
fn policy_check_lists_version_roles_and_break_glass() {
    let o = medsched(&["policy", "check", &clinic_policy()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "version: clinic-2027.1");
    assert_eq!(lines[1], "roles: 8");
    // Every role, sorted by name, each followed by inherits, grants, denies.
    let roles: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .map(|l| l.trim())
        .collect();
    assert_eq!(roles, CLINIC_ROLES);
    let at = lines.iter().position(|l| *l == "  receptionist").unwrap();
    assert_eq!(lines[at + 1], "    inherits: -");
    assert!(
        lines[at + 2].starts_with("    grants: slots.read@tenant, appointment.read@tenant"),
        "{}",
        lines[at + 2]
    );
    assert_eq!(lines[at + 3], "    denies: phi.read@tenant");
    let at = lines.iter().position(|l| *l == "  clinic_admin").unwrap();
    assert_eq!(lines[at + 1], "    inherits: scheduler");
    assert!(
        lines.contains(&"break_glass.roles: provider, nurse"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"break_glass.max_minutes: 240"));
}

#[test]
fn invalid_policies_name_the_place() {
    let o = medsched(&["policy", "check", &policy_fixture("bad-scope.toml")]);
    assert_error(&o, "policy_invalid", 2);
    assert_eq!(
        stderr(&o).trim_end(),
        "error[policy_invalid]: invalid policy at roles.nurse.grants[1].scope: unknown scope `ward`"
    );
    let o = medsched(&["policy", "check", &policy_fixture("cycle.toml")]);
    assert_error(&o, "policy_invalid", 2);
    let err = stderr(&o);
    assert!(
        err.contains("at roles.b.inherits: inheritance cycle through `a`"),
        "{err}"
    );
    // `decide` refuses the same files before deciding anything.
    let o = medsched(&[
        "policy",
        "decide",
        &policy_fixture("cycle.toml"),
        "--principal",
        &policy_fixture("provider.json"),
        "--action",
        "slots.read",
        "--target",
        &policy_fixture("target-riverside.json"),
    ]);
    assert_error(&o, "policy_invalid", 2);
}

#[test]
fn malformed_policy_is_malformed_document() {
    let o = medsched(&["policy", "check", &policy_fixture("malformed.toml")]);
    assert_error(&o, "malformed_document", 2);
    let err = stderr(&o);
    assert!(err.contains("malformed toml document: line 4"), "{err}");
    assert_error(
        &medsched(&["policy", "check", &policy_fixture("no-such-policy.toml")]),
        "io_error",
        1,
    );
}

/// `policy decide` on the example policy; returns the parsed JSON.
fn decide(principal: &str, action: &str, target: &str) -> serde_json::Value {
    let o = medsched(&[
        "policy",
        "decide",
        &clinic_policy(),
        "--principal",
        &policy_fixture(principal),
        "--action",
        action,
        "--target",
        &policy_fixture(target),
        "--now",
        "2027-03-01T09:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn policy_decide_receptionist_phi_is_an_explicit_deny() {
    let v = decide("receptionist.json", "phi.read", "target-riverside.json");
    assert_eq!(
        v,
        serde_json::json!({
            "allowed": false,
            "rule": {
                "role": "receptionist",
                "effect": "deny",
                "action": "phi.read",
                "scope": "tenant",
            },
            "reason": "explicit_deny",
            "break_glass": false,
            "policy_version": "clinic-2027.1",
        })
    );
    // The same receptionist may book there.
    let v = decide(
        "receptionist.json",
        "appointment.book",
        "target-riverside.json",
    );
    assert_eq!(v["allowed"], true);
    assert_eq!(v["rule"]["scope"], "tenant");
}

#[test]
fn policy_decide_provider_on_assigned_resource_and_across_tenants() {
    for principal in ["provider.json", "provider.toml"] {
        let v = decide(principal, "phi.read", "target-riverside.json");
        assert_eq!(v["allowed"], true, "{v}");
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert_eq!(v["rule"]["role"], "provider");
        assert_eq!(v["rule"]["effect"], "grant");
        assert_eq!(v["rule"]["scope"], "assigned");
        assert_eq!(v["break_glass"], false);
        assert_eq!(v["policy_version"], "clinic-2027.1");
    }
    let v = decide("provider.json", "phi.read", "target-hillside.json");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["reason"], "cross_tenant");
    assert_eq!(v["rule"], serde_json::Value::Null);
}

#[test]
fn policy_decide_notes_roles_the_policy_lacks() {
    let o = medsched(&[
        "policy",
        "decide",
        &clinic_policy(),
        "--principal",
        &policy_fixture("unknown-role.json"),
        "--action",
        "slots.read",
        "--target",
        &policy_fixture("target-riverside.json"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["reason"], "no_grant");
    assert_eq!(
        stderr(&o).trim_end(),
        "note: role `janitor` is not in policy `clinic-2027.1`; it grants nothing"
    );
}

#[test]
fn policy_decide_bad_input_gives_its_codes() {
    let policy = clinic_policy();
    let provider = policy_fixture("provider.json");
    let target = policy_fixture("target-riverside.json");
    let run = |principal: &str, action: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            "policy",
            "decide",
            policy.as_str(),
            "--principal",
            principal,
            "--action",
            action,
            "--target",
            target,
        ];
        args.extend_from_slice(extra);
        medsched(&args)
    };
    let o = run(&provider, "x", &target, &[]);
    assert_error(&o, "invalid_input", 2);
    assert_eq!(
        stderr(&o).trim_end(),
        "error[invalid_input]: unknown action `x`"
    );
    assert_error(
        &run(&provider, "phi.read", &target, &["--now", "soon"]),
        "invalid_input",
        2,
    );
    let unknown_field = policy_fixture("principal-unknown-field.json");
    let o = run(&unknown_field, "phi.read", &target, &[]);
    assert_error(&o, "malformed_document", 2);
    // The position, never the unknown key itself (caller text).
    let err = stderr(&o);
    assert!(err.ends_with("line 5 column 13: unknown field\n"), "{err}");
    assert!(!err.contains("clearance"), "{err}");
    // A principal where a target belongs is caught by the target's schema.
    let o = run(&provider, "phi.read", &provider, &[]);
    assert_error(&o, "malformed_document", 2);
    assert!(stderr(&o).contains("target `"), "{}", stderr(&o));
    let missing = policy_fixture("no-such-target.json");
    assert_error(&run(&provider, "phi.read", &missing, &[]), "io_error", 1);
    // Missing flags are usage errors.
    assert_error(
        &medsched(&["policy", "decide", &policy, "--action", "phi.read"]),
        "invalid_input",
        2,
    );
}

#[test]
fn policy_help_documents_the_clock_and_exit_codes() {
    let o = medsched(&["policy", "decide", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("Defaults to this machine's clock"), "{out}");
    assert!(out.contains("Exit status:"), "{out}");
    assert!(out.contains("phi.read"), "{out}");
    let o = medsched(&["--help"]);
    assert!(stdout(&o).contains("policy"), "{}", stdout(&o));
}

#[test]
fn a_panic_becomes_one_internal_error_line() {
    let o = medsched(&["debug-panic"]);
    assert_error(&o, "internal_error", 4);
    let err = stderr(&o);
    assert!(
        !err.contains("debug-panic"),
        "the panic message leaked: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

// --- No PHI on stdout or stderr, size cap, UTF-8 ----------------------------

/// Writes `bytes` to a file of this test process in the temp folder.
fn temp_file(name: &str, bytes: &[u8]) -> String {
    let p = std::env::temp_dir().join(format!("medsched-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn medsched_bytes(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medsched"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("medsched runs");
    // The command stops reading at the cap and closes the pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Neither stream shows a planted value or a raw ESC/BEL byte.
fn assert_streams_clean(label: &str, o: &Output) {
    for bytes in [&o.stdout, &o.stderr] {
        let text = String::from_utf8_lossy(bytes);
        for mark in ["SENTINEL", "98765432101"] {
            assert!(!text.contains(mark), "{label}: `{mark}` in {text}");
        }
        assert!(
            !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
            "{label}: raw control byte in {text:?}"
        );
    }
}

#[test]
fn malformed_documents_echo_no_planted_text() {
    let hours = |rrule: &str| {
        format!(
            r#"{{"resources":[{{"id":"dr-a","zone":"UTC"}}],"working_hours":[{{"resource":"dr-a","dtstart":"2027-03-01T09:00:00","end":"12:00:00","rrule":"{rrule}"}}],"appointment_types":[{{"id":"visit","duration_min":30,"step_min":15,"requirements":[{{"resources":["dr-a"]}}]}}]}}"#
        )
    };
    let clinics: Vec<(&str, String, &str)> = vec![
        (
            "enum.json",
            r#"{"appointments":[{"id":"a1","resources":[],"status":"SENTINEL1"}]}"#.into(),
            "malformed_document",
        ),
        (
            "integer.json",
            r#"{"resources":[{"id":98765432101,"zone":"UTC"}]}"#.into(),
            "malformed_document",
        ),
        (
            "number.json",
            r#"{"resources":[{"id":"dr-a","zone":"UTC","capacity":98765432101}]}"#.into(),
            "malformed_document",
        ),
        (
            "key.json",
            r#"{"resources":[{"id":"dr-a","zone":"UTC","SENTINEL2":1}]}"#.into(),
            "malformed_document",
        ),
        (
            "quotes.json",
            r#"{"resources":"a\"SENTINEL3\"b"}"#.into(),
            "malformed_document",
        ),
        (
            "phi.json",
            r#"{"appointments":[{"id":"a1","resources":[],"reason":["SENTINEL-R"]}]}"#.into(),
            "malformed_document",
        ),
        ("rule.json", hours("FREQ=SENTINEL4"), "rrule_invalid"),
        (
            "long-rule.json",
            hours(&format!("FREQ=SENTINEL4{}", "Y".repeat(200_000))),
            "rrule_invalid",
        ),
        (
            "enum.toml",
            "[[appointments]]\nid = \"a1\"\nresources = []\nstatus = \"SENTINEL1\"\n".into(),
            "malformed_document",
        ),
        (
            "key.toml",
            "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\nSENTINEL2 = 1\n".into(),
            "malformed_document",
        ),
        (
            "quotes.toml",
            "resources = \"a\\\"SENTINEL3\\\"b\"\n".into(),
            "malformed_document",
        ),
        (
            "number.toml",
            "[[resources]]\nid = \"dr-a\"\nzone = \"UTC\"\ncapacity = 98765432101\n".into(),
            "malformed_document",
        ),
    ];
    for (name, text, code) in &clinics {
        let file = temp_file(name, text.as_bytes());
        let o = medsched(&[
            "slots",
            &file,
            "--type",
            "visit",
            "--from",
            "2027-03-12",
            "--to",
            "2027-03-16",
        ]);
        assert_error(&o, code, 2);
        assert_streams_clean(name, &o);
    }
    let o = medsched_stdin(
        &["expand"],
        Some("DTSTART:20270301T090000\nRRULE:FREQ=SENTINEL4;BYHOUR=SENTINEL4\n"),
    );
    assert_error(&o, "rrule_invalid", 2);
    assert_streams_clean("expand rule text", &o);
    let clinic = fixture("tiny.json");
    let requests = [
        ("req-time.json", r#"{"type":"visit","start":"SENTINEL6"}"#),
        (
            "req-key.json",
            r#"{"type":"visit","start":"2027-03-16T13:00:00Z","SENTINEL2":1}"#,
        ),
        (
            "req-quotes.json",
            r#"{"type":"visit","start":"2027-03-16T13:00:00Z","resources":"a\"SENTINEL3\"b"}"#,
        ),
        (
            "req-rule.json",
            r#"{"type":"visit","zone":"UTC","dtstart":"2027-03-01T10:00:00","rrule":"FREQ=SENTINEL4","resources":["dr-a"]}"#,
        ),
        (
            "req-key.toml",
            "type = \"visit\"\nstart = \"2027-03-16T13:00:00Z\"\nSENTINEL2 = 1\n",
        ),
    ];
    for (name, text) in requests {
        let file = temp_file(name, text.as_bytes());
        let o = medsched(&["check", &clinic, &file, "--now", "2027-02-01"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert_streams_clean(name, &o);
    }
    let policies = [
        (
            "pol-key.toml",
            "version = \"v\"\n[roles.a]\nSENTINEL2 = 1\n",
        ),
        (
            "pol-number.toml",
            "version = \"v\"\n[break_glass]\nmax_minutes = 98765432101\n",
        ),
        ("pol-quotes.toml", "version = [\"a\\\"SENTINEL3\\\"b\"]\n"),
    ];
    for (name, text) in policies {
        let file = temp_file(name, text.as_bytes());
        let o = medsched(&["policy", "check", &file]);
        assert_error(&o, "malformed_document", 2);
        assert_streams_clean(name, &o);
    }
    let policy = clinic_policy();
    let provider = policy_fixture("provider.json");
    let target = policy_fixture("target-riverside.json");
    let docs = [
        (
            "pr-key.json",
            r#"{"user":"u","tenant":"t","SENTINEL2":1}"#,
            true,
        ),
        (
            "pr-number.json",
            r#"{"user":98765432101,"tenant":"t"}"#,
            true,
        ),
        (
            "pr-quotes.json",
            r#"{"user":"u","tenant":"t","roles":"a\"SENTINEL3\"b"}"#,
            true,
        ),
        (
            "pr-glass.json",
            r#"{"user":"u","tenant":"t","elevations":[{"patient":"p","reason":"SENTINEL-B","granted_at":"x"}]}"#,
            true,
        ),
        ("tg-key.json", r#"{"tenant":"t","SENTINEL2":1}"#, false),
        (
            "tg-number.toml",
            "tenant = \"t\"\npatient = 98765432101\n",
            false,
        ),
    ];
    for (name, text, is_principal) in docs {
        let file = temp_file(name, text.as_bytes());
        let (p, t) = if is_principal {
            (file.as_str(), target.as_str())
        } else {
            (provider.as_str(), file.as_str())
        };
        let o = medsched(&[
            "policy",
            "decide",
            &policy,
            "--principal",
            p,
            "--action",
            "phi.read",
            "--target",
            t,
        ]);
        assert_error(&o, "malformed_document", 2);
        assert_streams_clean(name, &o);
    }
}

#[test]
fn control_characters_in_ids_are_escaped() {
    let text = "{\"resources\":[{\"id\":\"dr-a\",\"zone\":\"UTC\"}],\"working_hours\":[{\"resource\":\"ghost\\u001b]0;owned\\u0007\",\"dtstart\":\"2027-03-01T09:00:00\",\"end\":\"12:00:00\",\"rrule\":\"FREQ=DAILY\"}]}";
    let file = temp_file("esc.json", text.as_bytes());
    let o = medsched(&[
        "slots",
        &file,
        "--type",
        "visit",
        "--from",
        "2027-03-12",
        "--to",
        "2027-03-16",
    ]);
    assert_error(&o, "not_found", 2);
    assert_streams_clean("esc id", &o);
    assert!(
        stderr(&o).contains("ghost\\u{1b}]0;owned\\u{7}"),
        "{}",
        stderr(&o)
    );
    // A file name or flag value is escaped too.
    let o = medsched(&[
        "slots",
        "no-such-\u{1b}[2J.json",
        "--type",
        "visit",
        "--from",
        "2027-03-12",
        "--to",
        "2027-03-16",
    ]);
    assert_error(&o, "io_error", 1);
    assert_streams_clean("esc file name", &o);
    let o = medsched(&["expand", "-", "--from", "\u{7}SENTINEL9"]);
    assert_error(&o, "invalid_input", 2);
    assert!(stderr(&o).contains("\\u{7}"), "{}", stderr(&o));
}

#[test]
fn oversized_input_is_bad_input_and_ends_quickly() {
    let started = std::time::Instant::now();
    for args in [
        vec![
            "slots",
            "/dev/zero",
            "--type",
            "visit",
            "--from",
            "2027-03-12",
            "--to",
            "2027-03-16",
        ],
        vec!["expand", "/dev/zero"],
        vec!["policy", "check", "/dev/zero"],
    ] {
        let o = medsched(&args);
        assert_error(&o, "document_too_large", 2);
        assert!(
            stderr(&o).contains("16777216 bytes"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let big = vec![b' '; 16 * 1024 * 1024 + 10];
    let o = medsched_bytes(&["expand"], &big);
    assert_error(&o, "document_too_large", 2);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn invalid_utf8_is_bad_input() {
    let file = temp_file(
        "latin1.json",
        b"{\"resources\": [\n {\"id\": \"dr-\xe9\"}]}",
    );
    let o = medsched(&[
        "slots",
        &file,
        "--type",
        "visit",
        "--from",
        "2027-03-12",
        "--to",
        "2027-03-16",
    ]);
    assert_error(&o, "malformed_document", 2);
    assert_eq!(
        stderr(&o).trim_end(),
        "error[malformed_document]: malformed json document: line 2 column 13: invalid utf-8"
    );
    let o = medsched_bytes(
        &["expand"],
        b"DTSTART:20270301T090000\nRRULE:FREQ=DAILY\xff\n",
    );
    assert_error(&o, "malformed_document", 2);
    assert!(
        stderr(&o).contains("malformed icalendar document: line 2"),
        "{}",
        stderr(&o)
    );
}

/// Every case of the hostile corpus (`tests/hostile/cases.tsv`) ends with
/// its typed outcome: the exit status and error code listed there, one
/// error line and no panic. (`scripts/hostile` also times them.)
#[test]
fn hostile_corpus_cases_end_with_their_typed_outcome() {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "hostile"]
        .iter()
        .collect();
    let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    let mut ran = 0;
    for line in cases
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [name, status, code, args] = fields[..] else {
            panic!("bad case line {line:?}");
        };
        let args = args.replace("{}", &dir.to_string_lossy());
        let args: Vec<&str> = args.split(' ').collect();
        let o = medsched(&args);
        let status: i32 = status.parse().unwrap();
        if code == "-" {
            assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
        } else {
            assert_error_status(&o, code, status, name);
        }
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} hostile cases");
}

/// Like `assert_error`, for outputs too large to compare.
fn assert_error_status(o: &Output, code: &str, status: i32, name: &str) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{name}: panic: {err}");
    assert_eq!(o.status.code(), Some(status), "{name}: {err}");
    assert_eq!(err.lines().count(), 1, "{name}: one line expected: {err:?}");
    assert!(
        err.starts_with(&format!("error[{code}]: ")),
        "{name}: expected {code}, got {err:?}"
    );
    assert!(err.len() < 400, "{name}: long message: {err}");
}
