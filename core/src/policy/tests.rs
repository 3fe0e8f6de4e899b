use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 16, 12, 0, 0)
        .single()
        .unwrap()
}

fn clinic_policy() -> Policy {
    Policy::from_toml(include_str!("../../../fixtures/policy-clinic.toml")).unwrap()
}

fn principal(role: &str) -> Principal {
    Principal {
        user: format!("u-{role}"),
        tenant: "t1".into(),
        roles: vec![role.into()],
        patient: Some("pat-self".into()),
        resources: vec!["dr-self".into()],
        departments: vec!["cardiology".into()],
        guardianships: vec![Guardianship {
            patient: "pat-ward".into(),
            from: None,
            until: None,
        }],
        elevations: vec![],
    }
}

/// The four targets of the table: own (or ward), assigned, same department,
/// other tenant.
fn targets() -> [(&'static str, Target); 4] {
    let base = |patient: &str, resource: &str, dept: &str, tenant: &str| Target {
        tenant: tenant.into(),
        patient: Some(patient.into()),
        resources: vec![resource.into()],
        departments: vec![dept.into()],
    };
    [
        ("own", base("pat-self", "dr-other", "oncology", "t1")),
        ("assigned", base("pat-x", "dr-self", "oncology", "t1")),
        ("department", base("pat-y", "dr-other", "cardiology", "t1")),
        (
            "other_tenant",
            base("pat-self", "dr-self", "cardiology", "t2"),
        ),
    ]
}

#[test]
fn clinic_policy_role_table() {
    let p = clinic_policy();
    // Per role, per target (own, assigned, department, other tenant):
    // read, phi, book, cancel, overbook; 1 = allowed.
    let table: &[(&str, [&str; 4])] = &[
        ("patient", ["11110", "00000", "00000", "00000"]),
        ("guardian", ["11110", "00000", "00000", "00000"]),
        ("provider", ["00000", "11111", "10000", "00000"]),
        ("nurse", ["00000", "00000", "11000", "00000"]),
        ("receptionist", ["10110", "10110", "10110", "00000"]),
        ("scheduler", ["10110", "10110", "10111", "00000"]),
        ("clinic_admin", ["10111", "10111", "10111", "00000"]),
        ("auditor", ["00000", "00000", "00000", "00000"]),
    ];
    let actions = [
        Action::AppointmentRead,
        Action::PhiRead,
        Action::AppointmentBook,
        Action::AppointmentCancel,
        Action::AppointmentOverbook,
    ];
    for (role, rows) in table {
        let who = principal(role);
        for ((target_name, target), want) in targets().iter().zip(rows.iter()) {
            let got: String = actions
                .iter()
                .map(|a| {
                    if p.decide(&who, *a, target, now()).allowed {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            assert_eq!(&got, want, "{role} on {target_name}");
        }
    }
    // The guardian's ward.
    let ward = Target {
        tenant: "t1".into(),
        patient: Some("pat-ward".into()),
        ..Target::default()
    };
    assert!(
        p.decide(&principal("guardian"), Action::PhiRead, &ward, now())
            .allowed
    );
    assert!(
        !p.decide(&principal("patient"), Action::PhiRead, &ward, now())
            .allowed
    );
    // An expired guardianship gives nothing.
    let mut lapsed = principal("guardian");
    lapsed.guardianships[0].until = Some(now() - Duration::days(1));
    assert!(!p.decide(&lapsed, Action::PhiRead, &ward, now()).allowed);
    // The auditor reads the audit trail.
    assert!(
        p.decide(
            &principal("auditor"),
            Action::AuditRead,
            &targets()[0].1,
            now()
        )
        .allowed
    );
}

#[test]
fn decisions_carry_rule_reason_and_version() {
    let p = clinic_policy();
    let target = &targets()[1].1;
    let d = p.decide(&principal("receptionist"), Action::PhiRead, target, now());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(DenyReason::ExplicitDeny));
    assert_eq!(
        d.rule.as_ref().map(|r| (r.role.as_str(), r.effect)),
        Some(("receptionist", "deny"))
    );
    assert_eq!(d.policy_version, "clinic-2027.1");
    // Inherited deny: the admin is denied by the receptionist's rule.
    let d = p.decide(&principal("clinic_admin"), Action::PhiRead, target, now());
    assert_eq!(
        d.rule.as_ref().map(|r| r.role.as_str()),
        Some("receptionist")
    );
    let d = p.decide(&principal("provider"), Action::PhiRead, target, now());
    assert!(d.allowed);
    assert_eq!(
        d.rule,
        Some(RuleRef {
            role: "provider".into(),
            effect: "grant",
            action: "phi.read",
            scope: "assigned"
        })
    );
    let d = p.decide(&principal("auditor"), Action::PhiRead, target, now());
    assert_eq!((d.allowed, d.code()), (false, "no_grant"));
    let d = p.decide(
        &principal("clinic_admin"),
        Action::AppointmentRead,
        &targets()[3].1,
        now(),
    );
    assert_eq!(d.code(), "cross_tenant");
}

#[test]
fn break_glass_opens_one_patient_until_expiry() {
    let p = clinic_policy();
    let target = Target {
        tenant: "t1".into(),
        patient: Some("pat-z".into()),
        resources: vec!["dr-other".into()],
        departments: vec!["oncology".into()],
    };
    let mut nurse = principal("nurse");
    assert!(!p.decide(&nurse, Action::PhiRead, &target, now()).allowed);
    nurse.elevations.push(Elevation {
        patient: "pat-z".into(),
        reason: "unconscious patient in er".into(),
        granted_at: now(),
        expires_at: now() + Duration::minutes(60),
    });
    let d = p.decide(&nurse, Action::PhiRead, &target, now());
    assert!(d.allowed && d.break_glass);
    // Only that patient, only reads, only until expiry.
    let other = Target {
        patient: Some("pat-q".into()),
        ..target.clone()
    };
    assert!(!p.decide(&nurse, Action::PhiRead, &other, now()).allowed);
    assert!(
        !p.decide(&nurse, Action::AppointmentCancel, &target, now())
            .allowed
    );
    assert!(
        !p.decide(
            &nurse,
            Action::PhiRead,
            &target,
            now() + Duration::minutes(61)
        )
        .allowed
    );
    // A role without break-glass gains nothing from an elevation.
    let mut front = principal("receptionist");
    front.elevations = nurse.elevations.clone();
    assert!(!p.decide(&front, Action::PhiRead, &target, now()).allowed);
}

#[test]
fn invalid_policies_name_the_place() {
    let cases = [
        ("version = \"v\"\n[roles.a]\ninherits = [\"ghost\"]\n", "roles.a.inherits[0]"),
        ("version = \"v\"\n[roles.a]\ngrants = [{ action = \"fly\", scope = \"tenant\" }]\n", "roles.a.grants[0].action"),
        ("version = \"v\"\n[roles.a]\ndenies = [{ action = \"phi.read\", scope = \"galaxy\" }]\n", "roles.a.denies[0].scope"),
        ("version = \"v\"\n[roles.a]\ninherits = [\"b\"]\n[roles.b]\ninherits = [\"a\"]\n", "inheritance cycle"),
        ("version = \"v\"\n[break_glass]\nroles = [\"nobody\"]\nmax_minutes = 5\n", "break_glass.roles[0]"),
        ("version = \"\"\n", "version"),
    ];
    for (text, place) in cases {
        let e = Policy::from_toml(text).unwrap_err();
        assert_eq!(e.code(), "policy_invalid", "{text}");
        assert!(e.to_string().contains(place), "{e} should name {place}");
    }
    let e = Policy::from_toml("version = \"v\"\n[roles.a]\ngrant = []\n").unwrap_err();
    assert_eq!(e.code(), "malformed_document");
    let e = Policy::from_toml("version = ").unwrap_err();
    assert_eq!(e.code(), "malformed_document");
}

#[test]
fn policy_replacement_is_atomic() {
    let store = PolicyStore::new(clinic_policy());
    let before = store.current();
    store.replace(Policy::from_toml("version = \"empty\"\n").unwrap());
    assert_eq!(
        before.version(),
        "clinic-2027.1",
        "a running decision keeps its version"
    );
    assert_eq!(store.current().version(), "empty");
    let d = store.current().decide(
        &principal("provider"),
        Action::SlotsRead,
        &targets()[0].1,
        now(),
    );
    assert_eq!((d.allowed, d.policy_version.as_str()), (false, "empty"));
}

// Property tests on random policies.

const ROLE_NAMES: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];

#[derive(Debug, Clone)]
struct RandomRole {
    inherits: Vec<usize>,
    grants: Vec<(usize, usize)>,
    denies: Vec<(usize, usize)>,
}

fn random_role(i: usize) -> impl Strategy<Value = RandomRole> {
    (
        prop::collection::vec(0..i.max(1), 0..if i == 0 { 1 } else { 3 }),
        prop::collection::vec((0usize..13, 0usize..5), 0..6),
        prop::collection::vec((0usize..13, 0usize..5), 0..2),
    )
        .prop_map(move |(inherits, grants, denies)| RandomRole {
            // Inherit only lower-numbered roles: no cycles.
            inherits: if i == 0 { vec![] } else { inherits },
            grants,
            denies,
        })
}

fn random_policy() -> impl Strategy<Value = Vec<RandomRole>> {
    (
        random_role(0),
        random_role(1),
        random_role(2),
        random_role(3),
        random_role(4),
        random_role(5),
    )
        .prop_map(|(a, b, c, d, e, f)| vec![a, b, c, d, e, f])
}

fn doc_of(roles: &[RandomRole]) -> PolicyDoc {
    let rule = |(a, s): &(usize, usize)| RuleDoc {
        action: Action::ALL[*a].name().into(),
        scope: Scope::ALL[*s].name().into(),
    };
    PolicyDoc {
        version: "p".into(),
        roles: roles
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    ROLE_NAMES[i].to_owned(),
                    RoleDoc {
                        inherits: r
                            .inherits
                            .iter()
                            .map(|p| ROLE_NAMES[*p].to_owned())
                            .collect(),
                        grants: r.grants.iter().map(rule).collect(),
                        denies: r.denies.iter().map(rule).collect(),
                    },
                )
            })
            .collect(),
        break_glass: BreakGlassDoc::default(),
    }
}

fn random_principal() -> impl Strategy<Value = Principal> {
    (
        prop::collection::vec(0usize..6, 0..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(roles, own, assigned, dept, ward)| Principal {
            user: "u".into(),
            tenant: "t1".into(),
            roles: roles.iter().map(|r| ROLE_NAMES[*r].to_owned()).collect(),
            patient: own.then(|| "pat".to_owned()),
            resources: if assigned { vec!["res".into()] } else { vec![] },
            departments: if dept { vec!["dep".into()] } else { vec![] },
            guardianships: if ward {
                vec![Guardianship {
                    patient: "pat".into(),
                    from: None,
                    until: None,
                }]
            } else {
                vec![]
            },
            elevations: vec![],
        })
}

fn target_for(tenant: &str) -> Target {
    Target {
        tenant: tenant.into(),
        patient: Some("pat".into()),
        resources: vec!["res".into()],
        departments: vec!["dep".into()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn empty_policy_allows_nothing(who in random_principal(), a in 0usize..13) {
        let p = Policy::compile(PolicyDoc { version: "e".into(), ..PolicyDoc::default() }).unwrap();
        prop_assert!(!p.decide(&who, Action::ALL[a], &target_for("t1"), now()).allowed);
    }

    #[test]
    fn adding_a_deny_never_allows_and_adding_a_grant_never_denies(
        roles in random_policy(),
        who in random_principal(),
        role in 0usize..6,
        extra in (0usize..13, 0usize..5),
        a in 0usize..13,
    ) {
        let base = Policy::compile(doc_of(&roles)).unwrap();
        let before = base.decide(&who, Action::ALL[a], &target_for("t1"), now()).allowed;
        let mut with_deny = roles.clone();
        with_deny[role].denies.push(extra);
        let after_deny = Policy::compile(doc_of(&with_deny)).unwrap().decide(&who, Action::ALL[a], &target_for("t1"), now()).allowed;
        prop_assert!(before || !after_deny, "a deny turned a deny into an allow");
        let mut with_grant = roles.clone();
        with_grant[role].grants.push(extra);
        let after_grant = Policy::compile(doc_of(&with_grant)).unwrap().decide(&who, Action::ALL[a], &target_for("t1"), now()).allowed;
        prop_assert!(!before || after_grant, "a grant turned an allow into a deny");
    }

    #[test]
    fn reordering_or_duplicating_rules_changes_no_decision(
        roles in random_policy(),
        who in random_principal(),
        a in 0usize..13,
    ) {
        let base = Policy::compile(doc_of(&roles)).unwrap().decide(&who, Action::ALL[a], &target_for("t1"), now());
        let mut shuffled = roles.clone();
        for r in &mut shuffled {
            r.grants.reverse();
            r.denies.reverse();
            let g = r.grants.clone();
            r.grants.extend(g);
            let d = r.denies.clone();
            r.denies.extend(d);
        }
        let mut who2 = who.clone();
        who2.roles.reverse();
        let again = Policy::compile(doc_of(&shuffled)).unwrap().decide(&who2, Action::ALL[a], &target_for("t1"), now());
        prop_assert_eq!((base.allowed, base.reason), (again.allowed, again.reason));
    }

    #[test]
    fn removing_a_role_without_denies_never_adds_access(
        roles in random_policy(),
        who in random_principal(),
        a in 0usize..13,
    ) {
        let p = Policy::compile(doc_of(&roles)).unwrap();
        let before = p.decide(&who, Action::ALL[a], &target_for("t1"), now()).allowed;
        for (k, name) in who.roles.iter().enumerate() {
            // A role "carries no deny" when neither it nor what it inherits denies anything.
            let idx = ROLE_NAMES.iter().position(|n| n == name).unwrap();
            let mut stack = vec![idx];
            let mut carries_deny = false;
            while let Some(i) = stack.pop() {
                carries_deny |= !roles[i].denies.is_empty();
                stack.extend(roles[i].inherits.iter().copied());
            }
            if carries_deny {
                continue;
            }
            let mut fewer = who.clone();
            fewer.roles.remove(k);
            let after = p.decide(&fewer, Action::ALL[a], &target_for("t1"), now()).allowed;
            prop_assert!(before || !after, "removing {} added access", name);
        }
    }

    #[test]
    fn no_decision_crosses_tenants(roles in random_policy(), who in random_principal(), a in 0usize..13) {
        let p = Policy::compile(doc_of(&roles)).unwrap();
        let d = p.decide(&who, Action::ALL[a], &target_for("t2"), now());
        prop_assert!(!d.allowed);
        prop_assert_eq!(d.reason, Some(DenyReason::CrossTenant));
    }
}

/// `doc` with `extra` unrelated roles added (each granting everything at
/// tenant scope, inheriting nothing the principal holds), their names
/// sorted before, between and after the policy's own.
fn with_unrelated(mut doc: PolicyDoc, extra: usize, prefix: &str) -> PolicyDoc {
    let all = Action::ALL
        .iter()
        .map(|a| RuleDoc {
            action: a.name().into(),
            scope: "tenant".into(),
        })
        .collect::<Vec<_>>();
    let name = |k: usize| {
        let lead = ["0", "m", "~"][k % 3];
        format!("{lead}{prefix}{k:06}")
    };
    for k in 0..extra {
        let inherits = if k > 0 && k % 2 == 0 {
            vec![name(k - 1)]
        } else {
            vec![]
        };
        doc.roles.insert(
            name(k),
            RoleDoc {
                inherits,
                grants: all.clone(),
                denies: vec![],
            },
        );
    }
    doc
}

/// The decision as (allowed, granting/denying role and rule, reason).
fn verdict(p: &Policy, who: &Principal, a: Action) -> (bool, Option<RuleRef>, Option<DenyReason>) {
    let d = p.decide(who, a, &target_for("t1"), now());
    (d.allowed, d.rule, d.reason)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Adding, renaming or reordering roles the principal does not hold
    /// changes none of its decisions, across the 8- and 16-bit index
    /// boundaries and up to the role limit (a patient-only role once read
    /// as an admin role's index modulo 65,536).
    #[test]
    fn unrelated_roles_change_no_decision(
        roles in random_policy(),
        who in random_principal(),
        extra in prop::sample::select(vec![1usize, 250, 255, 256, 257, 1000, MAX_ROLES - 6]),
    ) {
        let base = Policy::compile(doc_of(&roles)).unwrap();
        let grown = Policy::compile(with_unrelated(doc_of(&roles), extra, "x")).unwrap();
        let renamed = Policy::compile(with_unrelated(doc_of(&roles), extra, "y")).unwrap();
        for a in Action::ALL {
            let v = verdict(&base, &who, a);
            prop_assert_eq!(&v, &verdict(&grown, &who, a), "{} roles added, {}", extra, a.name());
            prop_assert_eq!(&v, &verdict(&renamed, &who, a), "{} roles renamed, {}", extra, a.name());
        }
    }
}

#[test]
fn policies_beyond_the_role_limit_are_refused() {
    let doc = with_unrelated(
        PolicyDoc {
            version: "big".into(),
            ..PolicyDoc::default()
        },
        65_537,
        "r",
    );
    let e = Policy::compile(doc).unwrap_err();
    assert_eq!(e.code(), "policy_invalid");
    assert!(e.to_string().contains(&MAX_ROLES.to_string()), "{e}");
}

#[test]
fn a_deep_inheritance_chain_compiles_in_linear_time() {
    // 20,000 roles, each inheriting the previous one; the last inherits the
    // first's grant. The old closure walked every chain from every role.
    let mut doc = PolicyDoc {
        version: "chain".into(),
        ..PolicyDoc::default()
    };
    for k in 0..20_000 {
        doc.roles.insert(
            format!("r{k:05}"),
            RoleDoc {
                inherits: if k == 0 {
                    vec![]
                } else {
                    vec![format!("r{:05}", k - 1)]
                },
                grants: if k == 0 {
                    vec![RuleDoc {
                        action: "phi.read".into(),
                        scope: "tenant".into(),
                    }]
                } else {
                    vec![]
                },
                denies: vec![],
            },
        );
    }
    let p = Policy::compile(doc).unwrap();
    let mut who = principal("r19999");
    who.roles = vec!["r19999".into()];
    let d = p.decide(&who, Action::PhiRead, &target_for("t1"), now());
    assert!(d.allowed);
    assert_eq!(d.rule.map(|r| r.role), Some("r00000".to_owned()));
}
