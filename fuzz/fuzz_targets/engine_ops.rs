//! Arbitrary sequences of engine operations on `MemoryStore`, checked
//! against a simple model.
//!
//! The clinic is an arbitrary small one (see the helpers); the principal
//! may do everything in its tenant. Operations: book, hold, confirm,
//! cancel, reschedule, status transitions, retries of an earlier request
//! with its idempotency key, reuse of a key with other parameters, waitlist
//! entries, outbox claims and acknowledgements, and moving the clock.
//!
//! Checks after every operation: no panic; errors pass `check_error` and
//! never carry the PHI sentinel; active appointments (the store contract's
//! `busy_at`, buffers included) never exceed a resource's capacity (no
//! overlap at all on capacity 1); a repeated idempotency key with the same
//! parameters returns the first result, with other parameters fails with
//! `idempotency_mismatch`; a successful change raises the version by one;
//! the audit chain verifies; outbox events never carry PHI.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use chrono::Duration;
use libfuzzer_sys::fuzz_target;
use medsched_core::policy::{Policy, Principal};
use medsched_core::records::{AppointmentStatus, StoredAppointment, TenantId, WaitlistEntry};
use medsched_core::{BookRequest, CancelReason, Engine, Error, ManualClock, SlotQuery};
use medsched_fuzz::{at, check_error, max_overlap, STATUSES};
use medsched_storage::{chain_hash, verify_chain, MemoryStore, Store, GENESIS};

const TENANT: &str = "clinic-1";
const SENTINEL: &str = "PHI-SENTINEL";

const POLICY: &str = r#"
version = "fuzz-1"
[roles.ops]
grants = [
  { action = "slots.read", scope = "tenant" }, { action = "appointment.read", scope = "tenant" },
  { action = "phi.read", scope = "tenant" }, { action = "appointment.book", scope = "tenant" },
  { action = "appointment.cancel", scope = "tenant" }, { action = "appointment.reschedule", scope = "tenant" },
  { action = "appointment.status", scope = "tenant" }, { action = "appointment.overbook", scope = "tenant" },
  { action = "booking.bypass_notice", scope = "tenant" }, { action = "waitlist.manage", scope = "tenant" },
  { action = "outbox.drain", scope = "tenant" }, { action = "catalog.manage", scope = "tenant" },
  { action = "audit.read", scope = "tenant" },
]
"#;

/// What an idempotency key was first used for: the parameters that the
/// engine's fingerprint covers, and the appointment it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Params {
    hold: bool,
    type_id: String,
    start: i64,
    resources: Vec<String>,
    patient: Option<String>,
}

fn params(req: &BookRequest, hold: bool) -> Params {
    let mut resources = req.resources.clone();
    resources.sort();
    Params {
        hold,
        type_id: req.type_id.clone(),
        start: req.start.timestamp(),
        resources,
        patient: req.patient.clone(),
    }
}

struct World {
    engine: Engine<MemoryStore>,
    clock: Arc<ManualClock>,
    who: Principal,
    tenant: TenantId,
    /// Midnight UTC of the clinic's week.
    base: i64,
    resources: Vec<(String, u32)>,
    types: Vec<String>,
    /// Every appointment id the engine returned or may have created.
    ids: Vec<String>,
    waitlist: Vec<String>,
    keys: HashMap<String, (Params, String)>,
    /// Earlier book and hold requests, for retries.
    requests: Vec<(BookRequest, bool, Option<i64>)>,
    events: Vec<u64>,
    /// Starts asked for so far: later requests often reuse one, so that
    /// operations meet on the same slot.
    starts: Vec<i64>,
    /// Audit records checked so far, and the last one's hash.
    audited: u64,
    last_hash: String,
}

fn check(r: &std::result::Result<impl std::fmt::Debug, Error>) {
    if let Err(e) = r {
        check_error(e);
        assert!(!e.to_string().contains(SENTINEL), "PHI in an error: {e}");
    }
}

impl World {
    fn current(&self, id: &str) -> Option<Arc<StoredAppointment>> {
        self.engine
            .store()
            .appointment(&self.tenant, &id.into())
            .ok()
    }

    fn remember(&mut self, id: &str) {
        if !self.ids.iter().any(|x| x == id) {
            self.ids.push(id.to_owned());
        }
    }

    fn start(&mut self, u: &mut Unstructured<'_>) -> Result<chrono::DateTime<chrono::Utc>> {
        if !self.starts.is_empty() && u.ratio(1, 2)? {
            // An earlier start, or a quarter-hour next to it.
            let s = *u.choose(&self.starts)?;
            return Ok(at(s + 900 * u.int_in_range(-1..=1)?));
        }
        // A quarter-hour grid over three days, with a few off-grid minutes.
        let q: i64 = u.int_in_range(0..=3 * 96)?;
        let off: i64 = if u.ratio(1, 8)? { 300 } else { 0 };
        let s = self.base + q * 900 + off;
        self.starts.push(s);
        Ok(at(s))
    }

    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<BookRequest> {
        let resources = if u.ratio(2, 3)? {
            vec![u.choose(&self.resources)?.0.clone()]
        } else {
            vec![]
        };
        Ok(BookRequest {
            id: None,
            type_id: u.choose(&self.types)?.clone(),
            start: self.start(u)?,
            resources,
            patient: Some(format!("p{}", u.int_in_range(0..=2)?)),
            reason: Some(format!("{SENTINEL} reason")),
            notes: None,
            idempotency_key: if u.ratio(1, 2)? {
                Some(format!("k{}", u.int_in_range(0..=3)?))
            } else {
                None
            },
            overbook: false,
            bypass_notice: u.ratio(1, 4)?,
        })
    }

    fn book(&mut self, req: &BookRequest, hold: bool, ttl: Option<i64>) {
        let r = if hold {
            self.engine.hold(&self.who, req, ttl)
        } else {
            self.engine.book(&self.who, req)
        };
        check(&r);
        medsched_fuzz::debug_dump(if hold { "hold" } else { "book" }, &(req, ttl, &r));
        let key = req.idempotency_key.clone();
        let p = params(req, hold);
        let known = key.as_ref().and_then(|k| self.keys.get(k)).cloned();
        match (&known, &r) {
            (Some((first, id)), _) if *first == p => match &r {
                Ok(b) => {
                    assert!(b.replayed, "a retry is not marked replayed");
                    assert_eq!(&b.appointment.appointment.id.0, id, "a retry books anew");
                }
                Err(e) => panic!("a retry with the same parameters fails: {e}"),
            },
            (Some(_), _) => match &r {
                Err(e) => assert_eq!(e.code(), "idempotency_mismatch", "{e}"),
                Ok(_) => panic!("a key reused with other parameters succeeds"),
            },
            (None, Ok(b)) => {
                assert!(!b.replayed, "a first request is marked replayed");
                let id = b.appointment.appointment.id.0.clone();
                if let Some(k) = key {
                    self.keys.insert(k, (p, id.clone()));
                }
                self.remember(&id);
            }
            (None, Err(_)) => {}
        }
    }

    fn pick_id(&self, u: &mut Unstructured<'_>) -> Result<Option<(String, u64)>> {
        if self.ids.is_empty() {
            return Ok(None);
        }
        let id = u.choose(&self.ids)?.clone();
        let version = self.current(&id).map_or(1, |a| a.version);
        // Now and then a stale or future version.
        let version = match u.int_in_range(0..=7)? {
            0 => version.saturating_sub(1),
            1 => version + 1,
            _ => version,
        };
        Ok(Some((id, version)))
    }

    /// A change of one appointment: on success the version rose by one.
    fn changed(
        &mut self,
        id: &str,
        before: Option<u64>,
        r: &std::result::Result<Arc<StoredAppointment>, Error>,
    ) {
        check(r);
        medsched_fuzz::debug_dump("change", &(id, before, r));
        if let (Ok(a), Some(v)) = (r, before) {
            assert_eq!(a.version, v + 1, "version of {id} after a change");
        }
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        match u.int_in_range(0..=12)? {
            0 | 1 => {
                let req = self.request(u)?;
                self.book(&req, false, None);
                self.requests.push((req, false, None));
            }
            2 => {
                let req = self.request(u)?;
                let ttl = Some(*u.choose(&[60, 600, 3600])?);
                self.book(&req, true, ttl);
                self.requests.push((req, true, ttl));
            }
            3 => {
                // A retry of an earlier request, exactly as sent.
                if !self.requests.is_empty() {
                    let (req, hold, ttl) = u.choose(&self.requests)?.clone();
                    self.book(&req, hold, ttl);
                }
            }
            4 => {
                // An earlier key with other parameters.
                if !self.requests.is_empty() {
                    let (mut req, hold, ttl) = u.choose(&self.requests)?.clone();
                    req.start = self.start(u)?;
                    self.book(&req, hold, ttl);
                }
            }
            5 => {
                if let Some((id, v)) = self.pick_id(u)? {
                    let cur = self.current(&id);
                    let before = cur.as_ref().map(|a| a.version);
                    let lapsed = cur.as_ref().is_some_and(|a| {
                        a.appointment.status == AppointmentStatus::Pending
                            && a.hold_expires_at.is_some_and(|h| h <= self.engine.now())
                    });
                    let r = self.engine.confirm(&self.who, &id, v);
                    if lapsed {
                        assert!(
                            matches!(&r, Err(e) if e.code() == "hold_expired"),
                            "confirming a lapsed hold gives {r:?}"
                        );
                    }
                    self.changed(&id, before, &r);
                }
            }
            6 => {
                if let Some((id, v)) = self.pick_id(u)? {
                    let before = self.current(&id).map(|a| a.version);
                    let reason = *u.choose(&[CancelReason::PatientRequest, CancelReason::Other])?;
                    let note = format!("{SENTINEL} note");
                    let note = u.arbitrary::<bool>()?.then_some(note.as_str());
                    let r = self.engine.cancel(&self.who, &id, v, reason, note);
                    self.changed(&id, before, &r);
                    if r.is_ok() {
                        // A waitlist offer may now hold the freed slot.
                        for w in self.waitlist.clone() {
                            let offer = format!("offer-{w}-{id}");
                            if self.current(&offer).is_some() {
                                self.remember(&offer);
                            }
                        }
                    }
                }
            }
            7 => {
                if let Some((id, v)) = self.pick_id(u)? {
                    let before = self.current(&id).map(|a| a.version);
                    let start = self.start(u)?;
                    let resources = if u.ratio(1, 3)? {
                        Some(vec![u.choose(&self.resources)?.0.clone()])
                    } else {
                        None
                    };
                    let r = self.engine.reschedule(&self.who, &id, v, start, resources);
                    self.changed(&id, before, &r);
                }
            }
            8 => {
                if let Some((id, v)) = self.pick_id(u)? {
                    let before = self.current(&id).map(|a| a.version);
                    let to = *u.choose(&STATUSES)?;
                    let r = self.engine.transition(&self.who, &id, v, to);
                    self.changed(&id, before, &r);
                    if let Ok(a) = &r {
                        assert_eq!(a.appointment.status, to, "status after a transition");
                    }
                }
            }
            9 => {
                let n = self.waitlist.len();
                let from = self.start(u)?;
                let entry = WaitlistEntry {
                    id: format!("w{n}"),
                    patient: format!("p{}", u.int_in_range(0..=3)?).as_str().into(),
                    type_id: u.choose(&self.types)?.as_str().into(),
                    resources: if u.arbitrary()? {
                        vec![u.choose(&self.resources)?.0.as_str().into()]
                    } else {
                        vec![]
                    },
                    from,
                    to: from + Duration::hours(u.int_in_range(1..=48)?),
                    created_at: self.engine.now(),
                };
                medsched_fuzz::debug_dump("waitlist", &entry);
                let r = self.engine.add_waitlist(&self.who, entry);
                check(&r);
                if r.is_ok() {
                    self.waitlist.push(format!("w{n}"));
                }
            }
            10 => {
                let minutes = *u.choose(&[1i64, 9, 30, 61, 240, 1440])?;
                self.clock.advance(Duration::minutes(minutes));
                medsched_fuzz::debug_dump("now", &self.engine.now());
            }
            11 => {
                let r = self.engine.claim_events(&self.who, "w1", 8, 60);
                check(&r);
                if let Ok(events) = &r {
                    assert!(
                        !format!("{events:?}").contains(SENTINEL),
                        "PHI in outbox events"
                    );
                    self.events.extend(events.iter().map(|e| e.id));
                }
                if !self.events.is_empty() && u.arbitrary()? {
                    let id = *u.choose(&self.events)?;
                    check(&self.engine.ack_event(&self.who, id, "w1"));
                }
            }
            _ => {
                // List slots and book the first one offered: it must succeed.
                let type_id = u.choose(&self.types)?.clone();
                let from = self.start(u)?;
                let q = SlotQuery {
                    type_id: type_id.clone(),
                    from,
                    to: from + Duration::hours(12),
                    now: self.engine.now(),
                    resources: vec![],
                };
                let r = self.engine.slots(&self.who, &q);
                check(&r);
                let first = r.ok().and_then(|s| {
                    s.assignments().first().map(|a| {
                        let rs: Vec<String> = a
                            .groups
                            .iter()
                            .flatten()
                            .filter_map(|i| s.resource_id(*i).map(str::to_owned))
                            .collect();
                        (a.start, rs)
                    })
                });
                if let Some((start, resources)) = first {
                    let req = BookRequest {
                        type_id,
                        start: at(start),
                        resources,
                        // A patient of its own: no patient overlap.
                        patient: Some(format!("q{}", self.ids.len())),
                        ..BookRequest::default()
                    };
                    let r = self.engine.book(&self.who, &req);
                    check(&r);
                    medsched_fuzz::debug_dump("book listed", &(&req, &r));
                    match r {
                        Ok(b) => self.remember(&b.appointment.appointment.id.0),
                        Err(e) => panic!("the first listed slot cannot be booked: {e}"),
                    }
                }
            }
        }
        Ok(())
    }

    fn invariants(&mut self) {
        let now = self.engine.now().timestamp();
        let mut per: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        let mut active: Vec<String> = Vec::new();
        for id in &self.ids {
            let Some(a) = self.current(id) else {
                panic!("appointment {id} vanished");
            };
            if let Some(span) = a.busy_at(now) {
                active.push(format!(
                    "{id} {} {:?} hold until {:?} on {:?}",
                    a.appointment.status.code(),
                    span,
                    a.hold_expires_at,
                    a.appointment.resources
                ));
                for r in &a.appointment.resources {
                    per.entry(r.0.clone()).or_default().push(span);
                }
            }
        }
        for (r, capacity) in &self.resources {
            let spans = per.get(r).map(Vec::as_slice).unwrap_or_default();
            let most = max_overlap(spans);
            assert!(
                most <= *capacity as usize,
                "{most} active appointments overlap on {r} (capacity {capacity}) at {now}: {active:#?}"
            );
        }
        // The chain's new records link to the last one checked (the whole
        // chain is verified once at the end).
        let records =
            match self
                .engine
                .store()
                .audit_records(&self.tenant, self.audited + 1, 100_000)
            {
                Ok(r) => r,
                Err(e) => panic!("audit records unreadable: {e}"),
            };
        for r in records {
            self.audited += 1;
            assert_eq!(r.seq, self.audited, "audit sequence");
            assert_eq!(r.prev_hash, self.last_hash, "audit link of {}", r.seq);
            assert_eq!(
                chain_hash(&r.prev_hash, r.seq, &r.entry),
                r.hash,
                "audit hash of {}",
                r.seq
            );
            assert!(
                !format!("{:?}", r.entry).contains(SENTINEL),
                "PHI in audit record {}",
                r.seq
            );
            self.last_hash = r.hash;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mut built) = medsched_fuzz::clinic(&mut u, false) else {
        return;
    };
    built.clinic.appointments.clear();
    medsched_fuzz::debug_dump("clinic", &built.clinic);
    let Ok(policy) = Policy::from_toml(POLICY) else {
        panic!("the fuzz policy does not load");
    };
    let base = built.base.timestamp();
    let clock = Arc::new(ManualClock::new(at(base - 86_400 + 3_600)));
    let engine = Engine::new(MemoryStore::new(), clock.clone(), policy);
    let who = Principal {
        user: "ops-1".into(),
        tenant: TENANT.into(),
        roles: vec!["ops".into()],
        ..Principal::default()
    };
    if let Err(e) = engine.put_catalog(&who, &built.clinic) {
        check_error(&e);
        panic!("a generated catalog is refused: {e}");
    }
    let mut w = World {
        engine,
        clock,
        who,
        tenant: TenantId::from(TENANT),
        base,
        resources: built
            .clinic
            .resources
            .iter()
            .map(|r| (r.id.0.clone(), r.capacity))
            .collect(),
        types: built
            .clinic
            .appointment_types
            .iter()
            .map(|t| t.id.0.clone())
            .collect(),
        ids: Vec::new(),
        waitlist: Vec::new(),
        keys: HashMap::new(),
        requests: Vec::new(),
        events: Vec::new(),
        starts: Vec::new(),
        audited: 0,
        last_hash: GENESIS.to_owned(),
    };
    for _ in 0..48 {
        if u.is_empty() || w.step(&mut u).is_err() {
            break;
        }
        w.invariants();
    }
    match w.engine.store().audit_records(&w.tenant, 1, 100_000) {
        Ok(records) => {
            if let Err(b) = verify_chain(&records) {
                panic!("audit chain breaks at {} ({})", b.seq, b.kind);
            }
        }
        Err(e) => panic!("audit records unreadable: {e}"),
    }
    match w.engine.verify_audit(&w.who) {
        Ok(n) => assert!(n >= 1, "the catalog change is audited"),
        Err(e) => panic!("audit chain does not verify: {e}"),
    }
});
