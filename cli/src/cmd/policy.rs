//! `medsched policy check` and `medsched policy decide`: validate an access
//! policy and list it, or decide one request against it.

use chrono::Utc;
use medsched_core::policy::{Action, Decision, Policy, Principal, Target};
use medsched_core::Format;
use serde_json::{json, Value};

use crate::error::{cut, echo, CliError};
use crate::input::{parse_opt_instant, read_file};
use crate::render::Out;
use crate::{PolicyCheckArgs, PolicyDecideArgs};

pub(crate) fn check(a: &PolicyCheckArgs) -> Result<Out, CliError> {
    let policy = load_policy(&a.policy)?;
    let mut out = Out::default();
    listing(&policy, &mut out);
    Ok(out)
}

pub(crate) fn decide(a: &PolicyDecideArgs) -> Result<Out, CliError> {
    let action = Action::from_name(&a.action)
        .ok_or_else(|| CliError::Input(format!("unknown action `{}`", echo(&a.action))))?;
    let now = parse_opt_instant("--now", a.now.as_deref())?;
    let policy = load_policy(&a.policy)?;
    let principal: Principal = read_doc(
        "principal",
        &a.principal,
        |t| serde_json::from_str(t),
        |t| toml::from_str(t),
    )?;
    let target: Target = read_doc(
        "target",
        &a.target,
        |t| serde_json::from_str(t),
        |t| toml::from_str(t),
    )?;
    // The policy core never reads the clock; the command line may.
    let decision = policy.decide(&principal, action, &target, now.unwrap_or_else(Utc::now));
    let mut out = Out::default();
    out.line(decision_text(&decision));
    for role in &principal.roles {
        if !policy.doc().roles.contains_key(role) {
            out.notes.push(format!(
                "role `{}` is not in policy `{}`; it grants nothing",
                echo(role),
                echo(policy.version())
            ));
        }
    }
    Ok(out)
}

/// Reads, validates and compiles a TOML policy file.
fn load_policy(path: &str) -> Result<Policy, CliError> {
    Ok(Policy::from_toml(&read_file(path)?)?)
}

/// The version, each role (sorted by name) with its own inherits, grants and
/// denies, then the break-glass settings. (The document types are not
/// exported by the core, so they are only reached through `Policy::doc`.)
fn listing(policy: &Policy, out: &mut Out) {
    let doc = policy.doc();
    let rules = |rs: &mut dyn Iterator<Item = (&String, &String)>| {
        list(rs.map(|(action, scope)| format!("{action}@{scope}")))
    };
    out.line(format!("version: {}", doc.version));
    out.line(format!("roles: {}", doc.roles.len()));
    for (name, role) in &doc.roles {
        out.line(format!("  {name}"));
        out.line(format!("    inherits: {}", list(role.inherits.iter())));
        let grants = &mut role.grants.iter().map(|r| (&r.action, &r.scope));
        out.line(format!("    grants: {}", rules(grants)));
        let denies = &mut role.denies.iter().map(|r| (&r.action, &r.scope));
        out.line(format!("    denies: {}", rules(denies)));
    }
    out.line(format!(
        "break_glass.roles: {}",
        list(doc.break_glass.roles.iter())
    ));
    out.line(format!(
        "break_glass.max_minutes: {}",
        doc.break_glass.max_minutes
    ));
}

/// `a, b, c`, or `-` when empty.
fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let parts: Vec<S> = items.collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The decision as pretty JSON, its `Serialize` shape in field order:
/// `allowed`, `rule` (`{role, effect, action, scope}` or null), `reason`
/// code (or null), `break_glass`, `policy_version`.
fn decision_text(d: &Decision) -> String {
    // Serializing these plain fields cannot fail; the fallback has the same
    // content with sorted keys.
    serde_json::to_string_pretty(d).unwrap_or_else(|_| format!("{:#}", decision_json(d)))
}

/// The decision as a JSON value, built field by field.
fn decision_json(d: &Decision) -> Value {
    json!({
        "allowed": d.allowed,
        "rule": d.rule.as_ref().map(|r| json!({
            "role": r.role,
            "effect": r.effect,
            "action": r.action,
            "scope": r.scope,
        })),
        "reason": d.reason.map(|r| r.code()),
        "break_glass": d.break_glass,
        "policy_version": d.policy_version,
    })
}

/// Reads a principal or target file: TOML for `.toml`, JSON otherwise.
/// A parse error is `malformed_document` with the file and position, and
/// without quoted values (they may be patient ids).
fn read_doc<T>(
    what: &str,
    path: &str,
    from_json: fn(&str) -> serde_json::Result<T>,
    from_toml: fn(&str) -> Result<T, toml::de::Error>,
) -> Result<T, CliError> {
    let text = read_file(path)?;
    let place = format!("{what} `{}`", echo(path));
    let malformed = |format: &'static str, line: usize, column: usize, message: &str| {
        CliError::Core(medsched_core::Error::Malformed {
            format,
            detail: format!("{place}, line {line} column {column}: {}", scrub(message)),
        })
    };
    match Format::from_path(path) {
        Format::Toml => from_toml(&text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| position(&text, s.start));
            malformed("toml", line, column, e.message())
        }),
        Format::Json => from_json(&text).map_err(|e| {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; the position is
            // reported separately.
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            malformed("json", e.line(), e.column(), msg)
        }),
    }
}

/// One-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A parser's message on one line, with quoted values replaced by `…` and
/// Rust type names replaced by what they are. Field names (in backticks)
/// stay: they are schema, not data.
fn scrub(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut in_quotes = false;
    for c in line.chars() {
        if c == '"' {
            out.push_str(if in_quotes { "\"" } else { "\"…" });
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    let out = out
        .replace("struct Principal", "a principal")
        .replace("struct Target", "a target")
        .replace("struct ", "an object ");
    // Long enough for serde's list of expected fields.
    cut(out.trim_end_matches('.'), 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLINIC: &str = include_str!("../../../fixtures/policy-clinic.toml");

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            user: "u1".into(),
            tenant: "t1".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            resources: vec!["dr-a".into()],
            ..Principal::default()
        }
    }

    fn target(tenant: &str) -> Target {
        Target {
            tenant: tenant.into(),
            patient: Some("p1".into()),
            resources: vec!["dr-a".into()],
            departments: vec![],
        }
    }

    #[test]
    fn decision_json_is_the_serialized_decision() {
        let policy = Policy::from_toml(CLINIC).unwrap();
        let now = Utc::now();
        let cases = [
            (principal(&["receptionist"]), Action::PhiRead, target("t1")),
            (principal(&["provider"]), Action::PhiRead, target("t1")),
            (principal(&["provider"]), Action::PhiRead, target("t2")),
            (principal(&["auditor"]), Action::PhiRead, target("t1")),
        ];
        for (p, a, t) in cases {
            let d = policy.decide(&p, a, &t, now);
            assert_eq!(decision_json(&d), serde_json::to_value(&d).unwrap());
            let text = decision_text(&d);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v, decision_json(&d));
            let keys = ["allowed", "rule", "reason", "break_glass", "policy_version"];
            let at: Vec<usize> = keys
                .iter()
                .map(|k| text.find(&format!("\n  \"{k}\": ")).unwrap())
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {text}");
        }
    }

    #[test]
    fn decide_help_lists_every_action() {
        for a in Action::ALL {
            assert!(
                crate::POLICY_DECIDE_ABOUT.contains(a.name()),
                "`{}` missing from the help of `policy decide`",
                a.name()
            );
        }
    }

    #[test]
    fn scrub_drops_quoted_values_and_type_names() {
        assert_eq!(
            scrub("invalid type: string \"pat-77\", expected a sequence"),
            "invalid type: string \"…\", expected a sequence"
        );
        assert_eq!(
            scrub("invalid type: integer `3`, expected struct Principal"),
            "invalid type: integer `3`, expected a principal"
        );
    }
}
