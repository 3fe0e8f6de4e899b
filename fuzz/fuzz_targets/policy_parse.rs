//! Arbitrary text through `Policy::from_toml`, and decisions of the loaded
//! policy for arbitrary principals, actions and targets.
//!
//! Input: the policy text, optionally followed by a NUL byte and bytes
//! that choose more principals and targets (seed files are plain TOML).
//! Checks: no panic; errors pass `check_error`; a loaded policy's document
//! written back as TOML loads to the same document; every decision equals
//! a direct reading of the document (deny by default, a deny beats a
//! grant, inheritance, the five scopes, break-glass for reads only), a
//! principal never crosses tenants, and the decision carries the policy
//! version and, when allowed, a rule for the asked action.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Unstructured;
use chrono::{DateTime, Duration, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use medsched_core::policy::{
    Action, DenyReason, Elevation, Guardianship, Policy, PolicyDoc, Principal, Scope, Target,
};
use medsched_fuzz::check_error;

const TENANTS: [&str; 3] = ["t1", "t2", ""];
const PATIENTS: [&str; 2] = ["p1", "p2"];
const RESOURCES: [&str; 2] = ["r1", "r2"];
const DEPARTMENTS: [&str; 2] = ["d1", "d2"];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 10, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Every role a role name stands for, itself included (the document is
/// validated, so every name is known and there is no cycle).
fn closure(doc: &PolicyDoc, role: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![role.to_owned()];
    while let Some(r) = stack.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        if let Some(d) = doc.roles.get(&r) {
            stack.extend(d.inherits.iter().cloned());
        }
    }
    seen
}

fn applies(scope: Scope, p: &Principal, t: &Target, now: DateTime<Utc>) -> bool {
    match scope {
        Scope::Own => matches!((&p.patient, &t.patient), (Some(a), Some(b)) if a == b),
        Scope::Guardian => t.patient.as_ref().is_some_and(|w| {
            p.guardianships.iter().any(|g| {
                &g.patient == w
                    && g.from.is_none_or(|f| f <= now)
                    && g.until.is_none_or(|u| now < u)
            })
        }),
        Scope::Assigned => t.resources.iter().any(|r| p.resources.contains(r)),
        Scope::Department => t.departments.iter().any(|d| p.departments.contains(d)),
        Scope::Tenant => true,
    }
}

/// What the document says: `(allowed, reason, break_glass)`.
fn model(
    doc: &PolicyDoc,
    p: &Principal,
    a: Action,
    t: &Target,
    now: DateTime<Utc>,
) -> (bool, Option<DenyReason>, bool) {
    if p.tenant.is_empty() || p.tenant != t.tenant {
        return (false, Some(DenyReason::CrossTenant), false);
    }
    let matching = |rules: &[medsched_core::policy::RuleDoc]| {
        rules.iter().any(|r| {
            Action::from_name(&r.action) == Some(a)
                && Scope::from_name(&r.scope).is_some_and(|s| applies(s, p, t, now))
        })
    };
    let roles: Vec<&medsched_core::policy::RoleDoc> = p
        .roles
        .iter()
        .filter(|r| doc.roles.contains_key(*r))
        .flat_map(|r| closure(doc, r))
        .filter_map(|r| doc.roles.get(&r))
        .collect();
    if roles.iter().any(|r| matching(&r.denies)) {
        return (false, Some(DenyReason::ExplicitDeny), false);
    }
    if roles.iter().any(|r| matching(&r.grants)) {
        return (true, None, false);
    }
    let may_elevate = p.roles.iter().any(|r| doc.break_glass.roles.contains(r));
    let elevated = t.patient.as_ref().is_some_and(|w| {
        p.elevations
            .iter()
            .any(|e| &e.patient == w && e.granted_at <= now && now < e.expires_at)
    });
    if matches!(a, Action::AppointmentRead | Action::PhiRead) && may_elevate && elevated {
        return (true, None, true);
    }
    (false, Some(DenyReason::NoGrant), false)
}

fn check(policy: &Policy, p: &Principal, a: Action, t: &Target, now: DateTime<Utc>) {
    let d = policy.decide(p, a, t, now);
    let (allowed, reason, break_glass) = model(policy.doc(), p, a, t, now);
    assert_eq!(
        (d.allowed, d.reason, d.break_glass),
        (allowed, reason, break_glass),
        "decision for {a:?} by {p:?} on {t:?}"
    );
    assert_eq!(d.policy_version, policy.version());
    assert_eq!(d.code(), reason.map_or("allowed", DenyReason::code));
    if d.allowed {
        let rule = d.rule.as_ref().map(|r| (r.action, r.effect));
        assert_eq!(rule, Some((a.name(), "grant")), "allowing rule");
    }
    if p.tenant != t.tenant || p.tenant.is_empty() {
        assert!(!d.allowed, "crossed tenants");
    }
}

fn pick(u: &mut Unstructured<'_>, from: &[&str]) -> Vec<String> {
    from.iter()
        .filter(|_| u.arbitrary().unwrap_or(false))
        .map(|s| (*s).to_owned())
        .collect()
}

fn principal(u: &mut Unstructured<'_>, role_names: &[String]) -> arbitrary::Result<Principal> {
    let now = now();
    let mut roles = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        if !role_names.is_empty() && u.ratio(5, 6)? {
            roles.push(u.choose(role_names)?.clone());
        } else {
            roles.push("no-such-role".to_owned());
        }
    }
    let when = |u: &mut Unstructured<'_>| -> arbitrary::Result<Option<DateTime<Utc>>> {
        Ok(match u.int_in_range(0..=3)? {
            0 => None,
            1 => Some(now - Duration::hours(1)),
            2 => Some(now),
            _ => Some(now + Duration::hours(1)),
        })
    };
    let mut guardianships = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        guardianships.push(Guardianship {
            patient: (*u.choose(&PATIENTS)?).to_owned(),
            from: when(u)?,
            until: when(u)?,
        });
    }
    let mut elevations = Vec::new();
    for _ in 0..u.int_in_range(0..=1)? {
        let granted_at = when(u)?.unwrap_or(now);
        elevations.push(Elevation {
            patient: (*u.choose(&PATIENTS)?).to_owned(),
            reason: "er".into(),
            granted_at,
            expires_at: when(u)?.unwrap_or(granted_at + Duration::minutes(30)),
        });
    }
    Ok(Principal {
        user: "u1".into(),
        tenant: (*u.choose(&TENANTS)?).to_owned(),
        roles,
        patient: if u.arbitrary()? {
            Some((*u.choose(&PATIENTS)?).to_owned())
        } else {
            None
        },
        resources: pick(u, &RESOURCES),
        departments: pick(u, &DEPARTMENTS),
        guardianships,
        elevations,
    })
}

fn target(u: &mut Unstructured<'_>) -> arbitrary::Result<Target> {
    Ok(Target {
        tenant: (*u.choose(&TENANTS)?).to_owned(),
        patient: if u.arbitrary()? {
            Some((*u.choose(&PATIENTS)?).to_owned())
        } else {
            None
        },
        resources: pick(u, &RESOURCES),
        departments: pick(u, &DEPARTMENTS),
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let (text_bytes, choice_bytes) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text_bytes);
    let policy = match Policy::from_toml(&text) {
        Ok(p) => p,
        Err(e) => {
            check_error(&e);
            return;
        }
    };

    // The document written back loads to the same document.
    match toml::to_string(policy.doc()) {
        Ok(again) => match Policy::from_toml(&again) {
            Ok(p2) => assert_eq!(p2.doc(), policy.doc(), "TOML round trip"),
            Err(e) => panic!("the policy's own TOML is refused: {e}"),
        },
        Err(e) => panic!("a loaded policy does not serialize: {e}"),
    }

    let now = now();
    let role_names: Vec<String> = policy.doc().roles.keys().take(16).cloned().collect();
    // Every role alone, no role, and all roles together; each action; a
    // target of one's own patient, another patient and another tenant.
    let mut principals: Vec<Principal> = role_names
        .iter()
        .map(|r| Principal {
            user: "u1".into(),
            tenant: "t1".into(),
            roles: vec![r.clone()],
            patient: Some("p1".into()),
            resources: vec!["r1".into()],
            departments: vec!["d1".into()],
            ..Principal::default()
        })
        .collect();
    principals.push(Principal {
        user: "nobody".into(),
        tenant: "t1".into(),
        ..Principal::default()
    });
    principals.push(Principal {
        user: "all".into(),
        tenant: "t1".into(),
        roles: role_names.clone(),
        ..Principal::default()
    });
    let targets = [
        Target {
            tenant: "t1".into(),
            patient: Some("p1".into()),
            resources: vec!["r1".into()],
            departments: vec!["d1".into()],
        },
        Target {
            tenant: "t1".into(),
            patient: Some("p2".into()),
            resources: vec!["r2".into()],
            departments: vec![],
        },
        Target {
            tenant: "t2".into(),
            patient: Some("p1".into()),
            resources: vec!["r1".into()],
            departments: vec!["d1".into()],
        },
    ];
    for p in &principals {
        for a in Action::ALL {
            for t in &targets {
                check(&policy, p, a, t, now);
            }
        }
    }
    // Deny by default: no role, no grant.
    for a in Action::ALL {
        let d = policy.decide(&principals[principals.len() - 2], a, &targets[0], now);
        assert!(!d.allowed && d.reason == Some(DenyReason::NoGrant));
    }

    let mut u = Unstructured::new(choice_bytes);
    for _ in 0..8 {
        if u.is_empty() {
            break;
        }
        let (Ok(p), Ok(t), Ok(a)) = (
            principal(&mut u, &role_names),
            target(&mut u),
            u.choose(&Action::ALL).copied(),
        ) else {
            break;
        };
        check(&policy, &p, a, &t, now);
        let _ = policy.may_break_glass(&p);
    }
});
