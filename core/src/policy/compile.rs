//! Loading, validating and compiling a policy document.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Action, Decision, DenyReason, Principal, RuleRef, Scope, Target};
use crate::error::{truncate, Error};

/// One rule as written: an action over a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// Action name (`appointment.book`).
    pub action: String,
    /// Scope name (`own`, `guardian`, `assigned`, `department`, `tenant`).
    pub scope: String,
}

/// One role as written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    /// Roles whose grants and denies this role also has.
    #[serde(default)]
    pub inherits: Vec<String>,
    /// What the role may do.
    #[serde(default)]
    pub grants: Vec<RuleDoc>,
    /// What the role may never do, whatever else grants it.
    #[serde(default)]
    pub denies: Vec<RuleDoc>,
}

/// Who may use break-glass, and for how long at most.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassDoc {
    /// Roles that may elevate.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Longest elevation, minutes.
    #[serde(default)]
    pub max_minutes: u32,
}

/// A policy document (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// The version reported with every decision.
    pub version: String,
    /// Roles by name.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleDoc>,
    /// Break-glass settings.
    #[serde(default)]
    pub break_glass: BreakGlassDoc,
}

const SCOPES: usize = 5;
const ACTIONS: usize = Action::ALL.len();

/// Most roles a policy may define. Role indices are `u32`, wide enough for
/// any policy that loads; a larger policy is refused with `policy_invalid`.
pub const MAX_ROLES: usize = 50_000;

/// A role's index in the compiled policy.
type RoleIdx = u32;

/// A role's own (scope index, action bit) grants and denies.
type OwnRules = (Vec<(usize, u32)>, Vec<(usize, u32)>);
const NONE: RoleIdx = RoleIdx::MAX;

#[derive(Debug, Clone)]
struct CompiledRole {
    /// Action bits granted, per scope (inheritance included).
    grants: [u32; SCOPES],
    /// Action bits denied, per scope (inheritance included).
    denies: [u32; SCOPES],
    /// For each scope and action bit, the role that declared the grant.
    grant_from: [[RoleIdx; ACTIONS]; SCOPES],
    /// For each scope and action bit, the role that declared the deny.
    deny_from: [[RoleIdx; ACTIONS]; SCOPES],
    break_glass: bool,
}

/// A validated, compiled policy: decisions are bit operations.
#[derive(Debug, Clone)]
pub struct Policy {
    doc: PolicyDoc,
    names: Vec<String>,
    index: HashMap<String, RoleIdx>,
    roles: Vec<CompiledRole>,
    max_break_glass_minutes: u32,
}

fn invalid(place: String, detail: impl Into<String>) -> Error {
    Error::PolicyInvalid {
        place,
        detail: detail.into(),
    }
}

impl Policy {
    /// Parses, validates and compiles a TOML policy. Nothing is half-loaded:
    /// any error leaves no policy.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for TOML that does not parse or has unknown
    /// keys; [`Error::PolicyInvalid`] naming the place of an unknown role,
    /// action or scope, or an inheritance cycle.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let doc: PolicyDoc = crate::document::parse_toml(text)?;
        Self::compile(doc)
    }

    /// Validates and compiles a parsed document.
    ///
    /// # Errors
    ///
    /// As [`Policy::from_toml`].
    pub fn compile(doc: PolicyDoc) -> Result<Self, Error> {
        if doc.version.trim().is_empty() {
            return Err(invalid("version".into(), "must not be empty"));
        }
        if doc.roles.len() > MAX_ROLES {
            return Err(invalid(
                "roles".into(),
                format!("{} roles exceed the limit of {MAX_ROLES}", doc.roles.len()),
            ));
        }
        let names: Vec<String> = doc.roles.keys().cloned().collect();
        let index: HashMap<String, RoleIdx> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as RoleIdx))
            .collect();
        // Own rules per role, validated.
        let mut own: Vec<OwnRules> = Vec::with_capacity(names.len());
        for (name, role) in &doc.roles {
            let place = |kind: &str, i: usize, field: &str| {
                format!("roles.{}.{kind}[{i}].{field}", truncate(name))
            };
            let parse = |rules: &[RuleDoc], kind: &str| -> Result<Vec<(usize, u32)>, Error> {
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let a = Action::from_name(&r.action).ok_or_else(|| {
                            invalid(
                                place(kind, i, "action"),
                                format!("unknown action `{}`", truncate(&r.action)),
                            )
                        })?;
                        let s = Scope::from_name(&r.scope).ok_or_else(|| {
                            invalid(
                                place(kind, i, "scope"),
                                format!("unknown scope `{}`", truncate(&r.scope)),
                            )
                        })?;
                        Ok((s.index(), a.bit()))
                    })
                    .collect()
            };
            let grants = parse(&role.grants, "grants")?;
            let denies = parse(&role.denies, "denies")?;
            for (i, parent) in role.inherits.iter().enumerate() {
                if !index.contains_key(parent) {
                    return Err(invalid(
                        format!("roles.{}.inherits[{i}]", truncate(name)),
                        format!("unknown role `{}`", truncate(parent)),
                    ));
                }
            }
            own.push((grants, denies));
        }
        for (i, r) in doc.break_glass.roles.iter().enumerate() {
            if !index.contains_key(r) {
                return Err(invalid(
                    format!("break_glass.roles[{i}]"),
                    format!("unknown role `{}`", truncate(r)),
                ));
            }
        }
        if !doc.break_glass.roles.is_empty() && doc.break_glass.max_minutes == 0 {
            return Err(invalid(
                "break_glass.max_minutes".into(),
                "must be at least 1 when roles may elevate",
            ));
        }
        // Inheritance closure in linear time: roles in an order where every
        // parent comes before its children (refusing cycles), then each
        // role's masks are its own rules OR its parents' closed masks.
        let parents: Vec<Vec<RoleIdx>> = doc
            .roles
            .values()
            .map(|r| {
                r.inherits
                    .iter()
                    .filter_map(|p| index.get(p).copied())
                    .collect()
            })
            .collect();
        let order = parents_first(&names, &parents)?;
        let bg: std::collections::HashSet<RoleIdx> = doc
            .break_glass
            .roles
            .iter()
            .filter_map(|r| index.get(r).copied())
            .collect();
        let mut roles: Vec<CompiledRole> = (0..names.len())
            .map(|i| CompiledRole {
                grants: [0; SCOPES],
                denies: [0; SCOPES],
                grant_from: [[NONE; ACTIONS]; SCOPES],
                deny_from: [[NONE; ACTIONS]; SCOPES],
                break_glass: bg.contains(&(i as RoleIdx)),
            })
            .collect();
        for &i in &order {
            let mut r = roles
                .get(i as usize)
                .cloned()
                .ok_or_else(|| Error::internal("a role index outside the policy"))?;
            // The role's own rules first, then each parent in `inherits`
            // order: the same attribution as a depth-first walk.
            if let Some((grants, denies)) = own.get(i as usize) {
                for &(s, bit) in grants {
                    set(&mut r.grants, &mut r.grant_from, s, bit, i);
                }
                for &(s, bit) in denies {
                    set(&mut r.denies, &mut r.deny_from, s, bit, i);
                }
            }
            for &p in parents
                .get(i as usize)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let Some(parent) = roles.get(p as usize) else {
                    continue;
                };
                inherit(
                    &mut r.grants,
                    &mut r.grant_from,
                    &parent.grants,
                    &parent.grant_from,
                );
                inherit(
                    &mut r.denies,
                    &mut r.deny_from,
                    &parent.denies,
                    &parent.deny_from,
                );
            }
            if let Some(slot) = roles.get_mut(i as usize) {
                *slot = r;
            }
        }
        Ok(Self {
            max_break_glass_minutes: doc.break_glass.max_minutes,
            doc,
            names,
            index,
            roles,
        })
    }

    /// The document as loaded.
    pub fn doc(&self) -> &PolicyDoc {
        &self.doc
    }

    /// The version reported with every decision.
    pub fn version(&self) -> &str {
        &self.doc.version
    }

    /// Longest break-glass elevation, minutes.
    pub fn max_break_glass_minutes(&self) -> u32 {
        self.max_break_glass_minutes
    }

    /// Whether any of the principal's roles may use break-glass.
    pub fn may_break_glass(&self, p: &Principal) -> bool {
        p.roles
            .iter()
            .filter_map(|r| self.index.get(r))
            .any(|&i| self.roles.get(i as usize).is_some_and(|r| r.break_glass))
    }

    fn rule(&self, role: RoleIdx, effect: &'static str, action: Action, scope: usize) -> RuleRef {
        RuleRef {
            role: self.names.get(role as usize).cloned().unwrap_or_default(),
            effect,
            action: action.name(),
            scope: Scope::ALL.get(scope).map_or("", |s| s.name()),
        }
    }

    /// Decides whether `principal` may do `action` on `target` at `now`.
    pub fn decide(
        &self,
        principal: &Principal,
        action: Action,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Decision {
        let version = self.doc.version.clone();
        if principal.tenant != target.tenant || principal.tenant.is_empty() {
            return Decision {
                allowed: false,
                rule: None,
                reason: Some(DenyReason::CrossTenant),
                break_glass: false,
                policy_version: version,
            };
        }
        let own = matches!((&principal.patient, &target.patient), (Some(m), Some(t)) if m == t);
        let ward = target.patient.as_ref().is_some_and(|t| {
            principal.guardianships.iter().any(|g| {
                &g.patient == t
                    && g.from.is_none_or(|f| f <= now)
                    && g.until.is_none_or(|u| now < u)
            })
        });
        let assigned = target
            .resources
            .iter()
            .any(|r| principal.resources.contains(r));
        let department = target
            .departments
            .iter()
            .any(|d| principal.departments.contains(d));
        // In `Scope` order: own, guardian, assigned, department, tenant.
        let applies: [bool; SCOPES] = [own, ward, assigned, department, true];

        let bit = action.bit();
        let slot = bit.trailing_zeros() as usize;
        let mut granted: Option<(RoleIdx, usize)> = None;
        for name in &principal.roles {
            let Some(&i) = self.index.get(name) else {
                continue;
            };
            let Some(role) = self.roles.get(i as usize) else {
                continue;
            };
            let scopes = applies
                .iter()
                .zip(role.denies.iter().zip(role.grants.iter()));
            for (s, (&on, (&deny, &grant))) in scopes.enumerate() {
                if !on {
                    continue;
                }
                if deny & bit != 0 {
                    let from = role
                        .deny_from
                        .get(s)
                        .and_then(|f| f.get(slot))
                        .copied()
                        .unwrap_or(NONE);
                    return Decision {
                        allowed: false,
                        rule: Some(self.rule(from, "deny", action, s)),
                        reason: Some(DenyReason::ExplicitDeny),
                        break_glass: false,
                        policy_version: version,
                    };
                }
                if granted.is_none() && grant & bit != 0 {
                    let from = role
                        .grant_from
                        .get(s)
                        .and_then(|f| f.get(slot))
                        .copied()
                        .unwrap_or(NONE);
                    granted = Some((from, s));
                }
            }
        }
        if let Some((from, s)) = granted {
            return Decision {
                allowed: true,
                rule: Some(self.rule(from, "grant", action, s)),
                reason: None,
                break_glass: false,
                policy_version: version,
            };
        }
        let emergency = matches!(action, Action::AppointmentRead | Action::PhiRead)
            && self.may_break_glass(principal)
            && target.patient.as_ref().is_some_and(|p| {
                principal
                    .elevations
                    .iter()
                    .any(|e| &e.patient == p && e.granted_at <= now && now < e.expires_at)
            });
        if emergency {
            return Decision {
                allowed: true,
                rule: Some(RuleRef {
                    role: "break_glass".into(),
                    effect: "grant",
                    action: action.name(),
                    scope: "own",
                }),
                reason: None,
                break_glass: true,
                policy_version: version,
            };
        }
        Decision {
            allowed: false,
            rule: None,
            reason: Some(DenyReason::NoGrant),
            break_glass: false,
            policy_version: version,
        }
    }
}

fn set(
    mask: &mut [u32; SCOPES],
    from: &mut [[RoleIdx; ACTIONS]; SCOPES],
    s: usize,
    bit: u32,
    role: RoleIdx,
) {
    if let (Some(m), Some(f)) = (mask.get_mut(s), from.get_mut(s)) {
        if *m & bit == 0 {
            *m |= bit;
            let slot = bit.trailing_zeros() as usize;
            if let Some(x) = f.get_mut(slot) {
                *x = role;
            }
        }
    }
}

/// Adds a parent's closed rules to a role's: bits the role does not have
/// yet come with the parent's attribution.
fn inherit(
    mask: &mut [u32; SCOPES],
    from: &mut [[RoleIdx; ACTIONS]; SCOPES],
    parent_mask: &[u32; SCOPES],
    parent_from: &[[RoleIdx; ACTIONS]; SCOPES],
) {
    for s in 0..SCOPES {
        let (Some(m), Some(f), Some(pm), Some(pf)) = (
            mask.get_mut(s),
            from.get_mut(s),
            parent_mask.get(s),
            parent_from.get(s),
        ) else {
            continue;
        };
        let mut new = *pm & !*m;
        *m |= *pm;
        while new != 0 {
            let slot = new.trailing_zeros() as usize;
            if let (Some(x), Some(&y)) = (f.get_mut(slot), pf.get(slot)) {
                *x = y;
            }
            new &= new - 1;
        }
    }
}

/// The roles in an order where every parent comes before its children,
/// by an iterative depth-first walk (a 20,000-deep chain needs no deep
/// stack); an inheritance cycle is `policy_invalid` naming the role.
fn parents_first(names: &[String], parents: &[Vec<RoleIdx>]) -> Result<Vec<RoleIdx>, Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; names.len()];
    let mut order = Vec::with_capacity(names.len());
    let name = |i: RoleIdx| truncate(names.get(i as usize).map_or("", String::as_str));
    for root in 0..names.len() as RoleIdx {
        if mark.get(root as usize) != Some(&Mark::New) {
            continue;
        }
        let mut stack: Vec<(RoleIdx, usize)> = vec![(root, 0)];
        if let Some(m) = mark.get_mut(root as usize) {
            *m = Mark::OnPath;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let kids = parents
                .get(node as usize)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if let Some(&kid) = kids.get(*next) {
                *next += 1;
                match mark.get(kid as usize) {
                    Some(Mark::OnPath) => {
                        return Err(invalid(
                            format!("roles.{}.inherits", name(node)),
                            format!("inheritance cycle through `{}`", name(kid)),
                        ))
                    }
                    Some(Mark::New) => {
                        if let Some(m) = mark.get_mut(kid as usize) {
                            *m = Mark::OnPath;
                        }
                        stack.push((kid, 0));
                    }
                    _ => {}
                }
            } else {
                if let Some(m) = mark.get_mut(node as usize) {
                    *m = Mark::Done;
                }
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}
