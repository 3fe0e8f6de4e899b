//! `medsched policy check` and `medsched policy decide`: validate an access
//! policy and list it, or decide one request against it.

use chrono::Utc;
use medsched_core::policy::{Action, Decision, Policy, Principal, Target};
use medsched_core::{document, Format};
use serde_json::{json, Value};

use crate::error::{echo, CliError};
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
    let principal: Principal = read_doc("principal", &a.principal)?;
    let target: Target = read_doc("target", &a.target)?;
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
/// A parse error is the core's `malformed_document` (category, position,
/// schema path, never quoted values: they may be patient ids), prefixed
/// with what the file is and its name.
fn read_doc<T: serde::de::DeserializeOwned>(what: &str, path: &str) -> Result<T, CliError> {
    let text = read_file(path)?;
    document::parse(&text, Format::from_path(path)).map_err(|e| match e {
        medsched_core::Error::Malformed { format, detail } => {
            CliError::Core(medsched_core::Error::Malformed {
                format,
                detail: format!("{what} `{}`, {detail}", echo(path)),
            })
        }
        other => CliError::Core(other),
    })
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
}
