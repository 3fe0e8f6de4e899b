//! The engine's public operations: every one takes the [`Principal`] who
//! asks, is decided by the policy, audited, and returns results with PHI
//! redacted unless the principal may read it. Redaction and audit happen
//! here, in the core, so no binding can skip them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use medsched_storage::{
    verify_chain, Appointment, AppointmentId, AppointmentStatus, AuditRecord, Clinic, NewAudit, Op,
    OutboxEvent, ResourceId, Store, StoredAppointment, TenantId, WaitlistEntry,
};

use crate::engine::{BookRequest, Booking, Engine, SeriesBooking, SeriesPolicy};
use crate::error::Error;
use crate::explain::{Explanation, OccurrenceReport, Proposal, SeriesProposal};
use crate::policy::{Action, Decision, Elevation, Policy, Principal, Target};
use crate::schedule::Catalog;
use crate::slots::{SlotQuery, Slots};

fn tenant_of(who: &Principal) -> TenantId {
    TenantId(who.tenant.clone())
}

fn entry(
    who: &Principal,
    action: Action,
    record: &str,
    d: &Decision,
    now: DateTime<Utc>,
) -> NewAudit {
    NewAudit {
        at: now,
        actor: who.user.clone(),
        action: action.name().to_owned(),
        record: record.to_owned(),
        decision: if d.allowed { "allow" } else { "deny" }.to_owned(),
        reason_code: match (&d.rule, d.reason) {
            (_, Some(r)) => r.code().to_owned(),
            (Some(rule), None) => format!("{}:{}@{}", rule.role, rule.action, rule.scope),
            (None, None) => "allowed".to_owned(),
        },
        policy_version: d.policy_version.clone(),
        break_glass: d.break_glass,
    }
}

impl<S: Store> Engine<S> {
    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.current()
    }

    /// Replaces the policy atomically; operations already running finish
    /// under the version they started with.
    pub fn replace_policy(&self, policy: Policy) {
        self.policy.replace(policy);
    }

    /// The target of an action on these resources and patient.
    fn target(
        cat: Option<&Catalog>,
        who: &Principal,
        patient: Option<&str>,
        resources: &[String],
    ) -> Target {
        let mut departments: Vec<String> = resources
            .iter()
            .filter_map(|r| {
                cat.and_then(|c| c.resource(r))
                    .and_then(|x| x.department.clone())
            })
            .collect();
        departments.sort();
        departments.dedup();
        Target {
            tenant: who.tenant.clone(),
            patient: patient.map(str::to_owned),
            resources: resources.to_vec(),
            departments,
        }
    }

    fn target_of(cat: &Catalog, who: &Principal, a: &Appointment) -> Target {
        let resources: Vec<String> = a.resources.iter().map(|r| r.0.clone()).collect();
        Self::target(
            Some(cat),
            who,
            a.patient.as_ref().map(|p| p.as_str()),
            &resources,
        )
    }

    /// Decides; a denial is audited (the operation fails if that audit
    /// cannot be written) and returned as `permission_denied`.
    fn authorize(
        &self,
        who: &Principal,
        action: Action,
        target: &Target,
        record: &str,
    ) -> Result<(Decision, NewAudit), Error> {
        let now = self.now();
        let d = self.policy.current().decide(who, action, target, now);
        let e = entry(who, action, record, &d, now);
        if !d.allowed {
            // A cross-tenant attempt is audited in the principal's own tenant.
            self.store().append_audit(&tenant_of(who), e)?;
            return Err(Error::PermissionDenied {
                action: action.name(),
                reason: d.code(),
            });
        }
        if d.break_glass {
            // Every use of an elevation is audited and flagged, reads too.
            self.store().append_audit(&tenant_of(who), e.clone())?;
        }
        Ok((d, e))
    }

    /// Redacts PHI unless `who` may read it for this appointment; a PHI read
    /// is audited (and fails the call if the audit cannot be written).
    fn present(
        &self,
        who: &Principal,
        cat: &Catalog,
        a: Arc<StoredAppointment>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let has_phi = a.appointment.reason.is_some() || a.appointment.notes.is_some();
        if !has_phi {
            return Ok(a);
        }
        let now = self.now();
        let target = Self::target_of(cat, who, &a.appointment);
        let d = self
            .policy
            .current()
            .decide(who, Action::PhiRead, &target, now);
        if d.allowed {
            self.store().append_audit(
                &tenant_of(who),
                entry(who, Action::PhiRead, a.appointment.id.as_str(), &d, now),
            )?;
            return Ok(a);
        }
        let mut redacted = (*a).clone();
        redacted.appointment.reason = None;
        redacted.appointment.notes = None;
        Ok(Arc::new(redacted))
    }

    fn load(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(Arc<Catalog>, Arc<StoredAppointment>), Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        let a = self
            .store()
            .appointment(&tenant, &AppointmentId::from(id))?;
        Ok((cat, a))
    }

    /// Validates and stores the catalog (`catalog.manage`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, and as the catalog's validation.
    pub fn put_catalog(&self, who: &Principal, clinic: &Clinic) -> Result<u64, Error> {
        let target = Self::target(None, who, None, &[]);
        let (_, e) = self.authorize(who, Action::CatalogManage, &target, "catalog")?;
        // The audit comes first: if it cannot be written, nothing changes.
        self.store().append_audit(&tenant_of(who), e)?;
        self.put_catalog_in(&tenant_of(who), clinic)
    }

    /// Bookable slots (`slots.read` on the queried resources). Slot lists
    /// carry no PHI.
    ///
    /// # Errors
    ///
    /// `permission_denied`, and as [`crate::Schedule::slots`].
    pub fn slots(&self, who: &Principal, q: &SlotQuery) -> Result<Slots, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        self.authorize(
            who,
            Action::SlotsRead,
            &Self::target(Some(&cat), who, None, &q.resources),
            "slots",
        )?;
        self.slots_in(&tenant, q)
    }

    /// Why a resource can or cannot take a start (`slots.read`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, and as [`crate::Schedule::explain`].
    pub fn explain(
        &self,
        who: &Principal,
        type_id: &str,
        resource: &str,
        start: DateTime<Utc>,
        patient: Option<&str>,
    ) -> Result<Explanation, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        self.authorize(
            who,
            Action::SlotsRead,
            &Self::target(Some(&cat), who, None, &[resource.to_owned()]),
            "slots",
        )?;
        self.explain_in(&tenant, type_id, resource, start, patient)
    }

    /// The conflict check of a proposal (`slots.read`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, and as [`crate::Schedule::check`].
    pub fn check(&self, who: &Principal, p: &Proposal) -> Result<OccurrenceReport, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        self.authorize(
            who,
            Action::SlotsRead,
            &Self::target(Some(&cat), who, None, &p.resources),
            "slots",
        )?;
        self.check_in(&tenant, p)
    }

    fn book_checks(
        &self,
        who: &Principal,
        cat: &Catalog,
        req: &BookRequest,
    ) -> Result<Vec<Op>, Error> {
        let target = Self::target(Some(cat), who, req.patient.as_deref(), &req.resources);
        let (_, e) = self.authorize(who, Action::AppointmentBook, &target, "new")?;
        let mut audit = vec![Op::Audit(e)];
        if req.overbook {
            let (_, e) = self.authorize(who, Action::AppointmentOverbook, &target, "new")?;
            audit.push(Op::Audit(e));
        }
        if req.bypass_notice {
            let (_, e) = self.authorize(who, Action::BypassNoticeHorizon, &target, "new")?;
            audit.push(Op::Audit(e));
        }
        Ok(audit)
    }

    /// Books one appointment (`appointment.book`; `appointment.overbook`
    /// and `booking.bypass_notice` for those options). The booking and its
    /// audit records commit together.
    ///
    /// # Errors
    ///
    /// `permission_denied`, `slot_unavailable`, `idempotency_mismatch`, ...
    pub fn book(&self, who: &Principal, req: &BookRequest) -> Result<Booking, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        let audit = self.book_checks(who, &cat, req)?;
        let mut b = self.book_in(&tenant, req, audit)?;
        b.appointment = self.present(who, &cat, b.appointment)?;
        Ok(b)
    }

    /// Holds a slot for a time (`appointment.book`).
    ///
    /// # Errors
    ///
    /// As [`Engine::book`].
    pub fn hold(
        &self,
        who: &Principal,
        req: &BookRequest,
        ttl_secs: Option<i64>,
    ) -> Result<Booking, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        let audit = self.book_checks(who, &cat, req)?;
        let mut b = self.hold_in(&tenant, req, ttl_secs, audit)?;
        b.appointment = self.present(who, &cat, b.appointment)?;
        Ok(b)
    }

    fn mutate(
        &self,
        who: &Principal,
        id: &str,
        action: Action,
        f: impl FnOnce(&TenantId, Vec<Op>) -> Result<Arc<StoredAppointment>, Error>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let (cat, current) = self.load(who, id)?;
        let (_, e) = self.authorize(
            who,
            action,
            &Self::target_of(&cat, who, &current.appointment),
            id,
        )?;
        let done = f(&tenant_of(who), vec![Op::Audit(e)])?;
        self.present(who, &cat, done)
    }

    /// Confirms a hold (`appointment.book`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `hold_expired`, `version_conflict`, ...
    pub fn confirm(
        &self,
        who: &Principal,
        id: &str,
        expected_version: u64,
    ) -> Result<Arc<StoredAppointment>, Error> {
        self.mutate(who, id, Action::AppointmentBook, |t, extra| {
            self.confirm_in(t, id, expected_version, extra)
        })
    }

    /// Cancels (`appointment.cancel`), recording who (the principal) and
    /// why (a reason code from the closed list, in the `cancelled` event).
    /// An optional note is PHI: it is added to the appointment's notes
    /// (redacted like them) and never reaches the event or the audit trail.
    ///
    /// # Errors
    ///
    /// `permission_denied`, `version_conflict`, `invalid_transition`, ...
    pub fn cancel(
        &self,
        who: &Principal,
        id: &str,
        expected_version: u64,
        reason: crate::CancelReason,
        note: Option<&str>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        self.mutate(who, id, Action::AppointmentCancel, |t, extra| {
            self.cancel_in(t, id, expected_version, &who.user, reason, note, extra)
        })
    }

    /// Moves an appointment (`appointment.reschedule`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `slot_unavailable`, `version_conflict`, ...
    pub fn reschedule(
        &self,
        who: &Principal,
        id: &str,
        expected_version: u64,
        new_start: DateTime<Utc>,
        resources: Option<Vec<String>>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        if let Some(rs) = &resources {
            // The new resources must be within the principal's reach too.
            let tenant = tenant_of(who);
            let cat = self.catalog(&tenant)?;
            let current = self
                .store()
                .appointment(&tenant, &AppointmentId::from(id))?;
            let t = Self::target(
                Some(&cat),
                who,
                current.appointment.patient.as_ref().map(|p| p.as_str()),
                rs,
            );
            self.authorize(who, Action::AppointmentReschedule, &t, id)?;
        }
        self.mutate(who, id, Action::AppointmentReschedule, |t, extra| {
            self.reschedule_in(t, id, expected_version, new_start, resources, extra)
        })
    }

    /// Changes status along the FHIR table (`appointment.status`;
    /// `appointment.cancel` for `cancelled`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `invalid_transition`, `version_conflict`, ...
    pub fn transition(
        &self,
        who: &Principal,
        id: &str,
        expected_version: u64,
        to: AppointmentStatus,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let action = if to == AppointmentStatus::Cancelled {
            Action::AppointmentCancel
        } else {
            Action::AppointmentStatus
        };
        self.mutate(who, id, action, |t, extra| {
            self.transition_in(t, id, expected_version, to, extra)
        })
    }

    /// Books a recurring series (`appointment.book`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `slot_unavailable` (all-or-nothing), ...
    pub fn book_series(
        &self,
        who: &Principal,
        p: &SeriesProposal,
        policy: SeriesPolicy,
        idempotency_key: Option<&str>,
    ) -> Result<SeriesBooking, Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        let target = Self::target(Some(&cat), who, p.patient.as_deref(), &p.resources);
        let (_, e) = self.authorize(who, Action::AppointmentBook, &target, "series")?;
        let mut done =
            self.book_series_in(&tenant, p, policy, idempotency_key, vec![Op::Audit(e)])?;
        done.booked = done
            .booked
            .into_iter()
            .map(|a| self.present(who, &cat, a))
            .collect::<Result<_, _>>()?;
        Ok(done)
    }

    /// Puts a patient on the waitlist (`waitlist.manage`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, and as validation.
    pub fn add_waitlist(&self, who: &Principal, entry_: WaitlistEntry) -> Result<(), Error> {
        let tenant = tenant_of(who);
        let cat = self.catalog(&tenant)?;
        let resources: Vec<String> = entry_
            .resources
            .iter()
            .map(|r: &ResourceId| r.0.clone())
            .collect();
        let target = Self::target(Some(&cat), who, Some(entry_.patient.as_str()), &resources);
        let (_, e) = self.authorize(who, Action::WaitlistManage, &target, &entry_.id)?;
        self.add_waitlist_in(&tenant, entry_, vec![Op::Audit(e)])
    }

    /// Claims outbox events (`outbox.drain`). Events carry ids, not PHI.
    ///
    /// # Errors
    ///
    /// `permission_denied`, `storage_unavailable`.
    pub fn claim_events(
        &self,
        who: &Principal,
        worker: &str,
        max: usize,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, Error> {
        self.authorize(
            who,
            Action::OutboxDrain,
            &Self::target(None, who, None, &[]),
            "outbox",
        )?;
        self.claim_events_in(&tenant_of(who), worker, max, lease_secs)
    }

    /// Acknowledges a delivered event (`outbox.drain`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `lease_lost`, `not_found`.
    pub fn ack_event(&self, who: &Principal, event_id: u64, worker: &str) -> Result<(), Error> {
        self.authorize(
            who,
            Action::OutboxDrain,
            &Self::target(None, who, None, &[]),
            "outbox",
        )?;
        self.ack_event_in(&tenant_of(who), event_id, worker)
    }

    /// One appointment (`appointment.read`), PHI redacted unless the
    /// principal may read it (that read is audited).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `not_found`.
    pub fn appointment(&self, who: &Principal, id: &str) -> Result<Arc<StoredAppointment>, Error> {
        let (cat, a) = self.load(who, id)?;
        self.authorize(
            who,
            Action::AppointmentRead,
            &Self::target_of(&cat, who, &a.appointment),
            id,
        )?;
        self.present(who, &cat, a)
    }

    /// Break-glass: emergency access to one patient's records for at most
    /// the policy's maximum, with a mandatory reason. Always audited and
    /// flagged for review; add the returned elevation to the principal.
    ///
    /// # Errors
    ///
    /// `permission_denied` when no role of the principal may break glass;
    /// `invalid_input` for an empty reason or a duration over the maximum.
    pub fn break_glass(
        &self,
        who: &Principal,
        patient: &str,
        reason: &str,
        minutes: u32,
    ) -> Result<Elevation, Error> {
        let now = self.now();
        let policy = self.policy.current();
        if reason.trim().is_empty() {
            return Err(Error::invalid("break_glass.reason", "a reason is required"));
        }
        if minutes == 0 || minutes > policy.max_break_glass_minutes() {
            return Err(Error::invalid(
                "break_glass.minutes",
                format!("must be between 1 and {}", policy.max_break_glass_minutes()),
            ));
        }
        let allowed = policy.may_break_glass(who);
        let e = NewAudit {
            at: now,
            actor: who.user.clone(),
            action: "break_glass.use".into(),
            record: patient.to_owned(),
            decision: if allowed { "allow" } else { "deny" }.into(),
            reason_code: if allowed { "break_glass" } else { "no_grant" }.into(),
            policy_version: policy.version().to_owned(),
            break_glass: true,
        };
        self.store().append_audit(&tenant_of(who), e)?;
        if !allowed {
            return Err(Error::PermissionDenied {
                action: "break_glass.use",
                reason: "no_grant",
            });
        }
        Ok(Elevation {
            patient: patient.to_owned(),
            reason: reason.to_owned(),
            granted_at: now,
            expires_at: now + Duration::minutes(i64::from(minutes)),
        })
    }

    /// The audit trail from `from_seq` (`audit.read`).
    ///
    /// # Errors
    ///
    /// `permission_denied`, `storage_unavailable`.
    pub fn audit_trail(
        &self,
        who: &Principal,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<AuditRecord>, Error> {
        self.authorize(
            who,
            Action::AuditRead,
            &Self::target(None, who, None, &[]),
            "audit",
        )?;
        Ok(self.store().audit_records(&tenant_of(who), from_seq, max)?)
    }

    /// Verifies the tenant's whole audit chain (`audit.read`): an edited,
    /// deleted or reordered record is reported as `integrity_error` naming
    /// its position.
    ///
    /// # Errors
    ///
    /// `permission_denied`, `integrity_error`, `storage_unavailable`.
    pub fn verify_audit(&self, who: &Principal) -> Result<u64, Error> {
        self.authorize(
            who,
            Action::AuditRead,
            &Self::target(None, who, None, &[]),
            "audit",
        )?;
        let tenant = tenant_of(who);
        let mut all = Vec::new();
        loop {
            let batch = self
                .store()
                .audit_records(&tenant, all.len() as u64 + 1, 10_000)?;
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        verify_chain(&all).map_err(|b| Error::Integrity {
            detail: format!("audit record {} fails its {} check", b.seq, b.kind),
        })?;
        Ok(all.len() as u64)
    }
}
