//! `Schedule`: a clinic compiled for fast queries. Ids become indices,
//! zones and rules are parsed once, appointments are sorted per resource as
//! busy spans. Building it validates the whole clinic, so a query never
//! meets a bad reference.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{NaiveTime, Timelike};
use chrono_tz::Tz;
use medsched_storage::{Appointment, AppointmentType, Clinic, LocalBlock, Settings, WorkingHours};

use crate::error::{Error, RecordKind};
use crate::recurrence::{Moment, Recurrence};
use crate::time::{day_of_date, parse_zone};

const MINUTE: i64 = 60;

/// A working-hours rule ready to expand.
#[derive(Debug, Clone)]
pub(crate) struct HoursRule {
    pub(crate) rec: Recurrence,
    /// Seconds after local midnight of the block end.
    pub(crate) end_tod: i64,
    /// Whether the block ends on the next local day.
    pub(crate) next_day: bool,
}

/// A block of an override date, as seconds after local midnight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayBlock {
    pub(crate) start_tod: i64,
    pub(crate) end_tod: i64,
    pub(crate) next_day: bool,
}

/// An appointment that holds time on a resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Busy {
    /// Start widened by the recorded buffer before.
    pub(crate) start: i64,
    /// End widened by the recorded buffer after.
    pub(crate) end: i64,
    pub(crate) raw_start: i64,
    pub(crate) raw_end: i64,
    /// The appointment's key (its index for a clinic file, the store's key
    /// otherwise).
    pub(crate) appointment: u64,
    pub(crate) type_idx: Option<u32>,
}

/// Time off on a resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Away {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) index: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Res {
    pub(crate) id: String,
    pub(crate) zone: Tz,
    pub(crate) capacity: u32,
    pub(crate) rules: Vec<HoursRule>,
    /// Override dates (day numbers), sorted, with their blocks.
    pub(crate) overrides: Vec<(i64, Vec<DayBlock>)>,
    /// Sorted by start.
    pub(crate) away: Vec<Away>,
    /// Longest own time off, seconds.
    pub(crate) away_longest: i64,
    /// Time off of the whole clinic, sorted by start; shared.
    pub(crate) clinic_away: Arc<[Away]>,
    /// Longest clinic-wide time off, seconds.
    pub(crate) clinic_away_longest: i64,
    pub(crate) tags: Vec<String>,
}

impl Res {
    /// The resource's own and the clinic's time off, each sorted by start.
    pub(crate) fn away_lists(&self) -> [&[Away]; 2] {
        [&self.away, &self.clinic_away]
    }

    /// Appends the time off (own and clinic-wide) overlapping `[from, to)`.
    pub(crate) fn away_in(&self, from: i64, to: i64, out: &mut Vec<crate::interval::Span>) {
        for (list, longest) in [
            (&self.away[..], self.away_longest),
            (&self.clinic_away[..], self.clinic_away_longest),
        ] {
            // Sorted by start: nothing starting before `from - longest`
            // reaches `from`.
            let lo = list.partition_point(|a| a.start < from.saturating_sub(longest));
            for a in list.get(lo..).unwrap_or_default() {
                if a.start >= to {
                    break;
                }
                if a.end > from {
                    out.push((a.start, a.end));
                }
            }
        }
    }
}

/// The appointments that hold time on one resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResBusy {
    /// Sorted by widened start.
    pub(crate) busy: Vec<Busy>,
    /// Longest widened busy span, to bound look-ups.
    pub(crate) longest: i64,
    /// Where the resource's capacity is used up: sorted, disjoint.
    /// Computed once, sliced per query.
    pub(crate) full: Vec<crate::interval::Span>,
}

impl ResBusy {
    fn finish(&mut self, capacity: u32) {
        if !self.busy.is_sorted_by_key(|b| (b.start, b.end)) {
            self.busy.sort_by_key(|b| (b.start, b.end));
        }
        self.longest = self.busy.iter().map(|b| b.end - b.start).max().unwrap_or(0);
        self.full.clear();
        if capacity <= 1 {
            // Sorted by start: one pass merges the spans.
            for b in &self.busy {
                match self.full.last_mut() {
                    Some(last) if b.start <= last.1 => last.1 = last.1.max(b.end),
                    _ => self.full.push((b.start, b.end)),
                }
            }
            return;
        }
        let spans: Vec<_> = self.busy.iter().map(|b| (b.start, b.end)).collect();
        crate::interval::at_least(&spans, capacity, &mut Vec::new(), &mut self.full);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) count: u32,
    /// Resource indices, ascending.
    pub(crate) members: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct Ty {
    pub(crate) duration: i64,
    pub(crate) before: i64,
    pub(crate) after: i64,
    pub(crate) step: i64,
    pub(crate) align: i64,
    pub(crate) notice: i64,
    pub(crate) horizon: Option<i64>,
    pub(crate) max_per_day: Option<u32>,
    pub(crate) max_per_week: Option<u32>,
    pub(crate) groups: Vec<Group>,
}

impl ResBusy {
    /// The spans of [`ResBusy::full`] that overlap `[from, to)` (unclipped).
    pub(crate) fn full_in(&self, from: i64, to: i64) -> &[crate::interval::Span] {
        // Windows often cover all of a resource's bookings: skip the searches.
        let lo = if self.full.first().is_some_and(|s| s.1 > from) {
            0
        } else {
            self.full.partition_point(|s| s.1 <= from)
        };
        let hi = if self.full.last().is_some_and(|s| s.0 < to) {
            self.full.len()
        } else {
            self.full.partition_point(|s| s.0 < to)
        };
        self.full.get(lo..hi.max(lo)).unwrap_or_default()
    }
}

impl Ty {
    /// Seconds the appointment with its buffers reaches before its start.
    pub(crate) fn reach_before(&self) -> i64 {
        self.before
    }

    /// Seconds the appointment with its buffers reaches after its start.
    pub(crate) fn reach_after(&self) -> i64 {
        self.duration + self.after
    }

    /// Whether the type is "one of these resources", the common case.
    pub(crate) fn is_single_choice(&self) -> bool {
        matches!(self.groups.as_slice(), [g] if g.count == 1)
    }
}

/// A clinic's catalog (resources, rules, overrides, time off, types)
/// compiled for queries: ids are indices, zones and rules are parsed. It
/// changes rarely; engines cache it per catalog version.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) settings: Settings,
    /// The resource records, in index order.
    pub(crate) resource_records: Vec<medsched_storage::Resource>,
    /// The appointment-type records, in index order.
    pub(crate) type_records: Vec<AppointmentType>,
    /// Sorted by id, so index order is id order.
    pub(crate) resources: Vec<Res>,
    pub(crate) resource_index: HashMap<String, u32>,
    /// Resource ids in index order, shared with the results that name
    /// resources by index.
    pub(crate) resource_names: Arc<[String]>,
    pub(crate) types: Vec<Ty>,
    pub(crate) type_index: HashMap<String, u32>,
    /// Time-off ids, by index.
    pub(crate) time_off_ids: Vec<String>,
}

/// The appointments a query sees, per resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bookings {
    /// Indexed like `Catalog::resources` (a clinic file's schedule).
    pub(crate) per: Vec<ResBusy>,
    /// Only the queried resources, sorted by catalog index (a store read).
    pub(crate) sparse: Vec<(u32, ResBusy)>,
    /// Appointment ids by key (for explanations).
    pub(crate) ids: HashMap<u64, String>,
    /// The appointments of a clinic file, by index.
    pub(crate) appointments: Vec<Appointment>,
    pub(crate) appointment_index: HashMap<String, u32>,
    /// Per patient id: holding appointments as `(start, end, key)`.
    pub(crate) patient_busy: HashMap<String, Vec<(i64, i64, u64)>>,
}

/// A catalog with the appointments a query sees. Cheap to share between
/// threads.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub(crate) cat: Arc<Catalog>,
    pub(crate) book: Bookings,
}

impl std::ops::Deref for Schedule {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.cat
    }
}

static NO_BUSY: ResBusy = ResBusy {
    busy: Vec::new(),
    longest: 0,
    full: Vec::new(),
};

fn minutes(field: impl Fn() -> String, value: u32, min: u32) -> Result<i64, Error> {
    if value < min {
        return Err(Error::invalid(
            field(),
            format!("must be at least {min} minutes"),
        ));
    }
    if value > 366 * 24 * 60 {
        return Err(Error::invalid(field(), "must be at most a year"));
    }
    Ok(i64::from(value) * MINUTE)
}

/// Longest buffer before or after an appointment, minutes (a day).
pub const MAX_BUFFER_MIN: u32 = 24 * 60;

fn buffer(field: impl Fn() -> String, value: u32) -> Result<i64, Error> {
    if value > MAX_BUFFER_MIN {
        return Err(Error::invalid(
            field(),
            format!("must be at most {MAX_BUFFER_MIN} minutes"),
        ));
    }
    Ok(i64::from(value) * MINUTE)
}

fn tod(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight())
}

fn day_block(b: &LocalBlock) -> DayBlock {
    DayBlock {
        start_tod: tod(b.start),
        end_tod: tod(b.end),
        next_day: b.end <= b.start,
    }
}

impl Schedule {
    /// Validates a clinic (catalog and appointments) and compiles it.
    ///
    /// # Errors
    ///
    /// As [`Catalog::new`]; [`Error::DuplicateId`], [`Error::NotFound`] and
    /// [`Error::EndBeforeStart`] for appointments.
    pub fn new(clinic: &Clinic) -> Result<Self, Error> {
        let cat = Arc::new(Catalog::new(clinic)?);
        let book = Bookings::from_appointments(&cat, &clinic.appointments)?;
        Ok(Self { cat, book })
    }

    /// A schedule over a cached catalog and the rows of a batched store
    /// read; `positions[i]` is the catalog index of the query's resource
    /// `i`; rows flagged `same_type` count as `type_idx`. Without
    /// `need_busy` only the capacity spans are built (enough to list slots
    /// of a type without limits); with it, every row is kept for limits and
    /// explanations.
    pub(crate) fn from_rows(
        cat: Arc<Catalog>,
        positions: &[u32],
        rows: &[medsched_storage::BookingRow],
        type_idx: Option<u32>,
        need_busy: bool,
    ) -> Self {
        let busy_start = |r: &medsched_storage::BookingRow| r.start - r.buffer_before;
        let mut sorted_rows;
        let rows = if rows.is_sorted_by_key(|r| (r.resource, busy_start(r))) {
            rows
        } else {
            sorted_rows = rows.to_vec();
            sorted_rows.sort_by_key(|r| (r.resource, busy_start(r)));
            &sorted_rows[..]
        };
        let mut sparse: Vec<(u32, ResBusy)> = Vec::with_capacity(positions.len());
        for group in rows.chunk_by(|a, b| a.resource == b.resource) {
            let Some(first) = group.first() else { continue };
            let Some(&r) = positions.get(first.resource as usize) else {
                continue;
            };
            let capacity = cat.resources.get(r as usize).map_or(1, |x| x.capacity);
            sparse.push((r, ResBusy::default()));
            let Some((_, rb)) = sparse.last_mut() else {
                continue;
            };
            if need_busy || capacity > 1 {
                rb.busy = group
                    .iter()
                    .map(|row| Busy {
                        start: busy_start(row),
                        end: row.end + row.buffer_after,
                        raw_start: row.start,
                        raw_end: row.end,
                        appointment: row.key,
                        type_idx: if row.same_type { type_idx } else { None },
                    })
                    .collect();
                rb.finish(capacity);
            } else {
                // Capacity one: merge the widened spans in one pass.
                rb.full.reserve(group.len());
                for row in group {
                    let (s, e) = (busy_start(row), row.end + row.buffer_after);
                    rb.longest = rb.longest.max(e - s);
                    match rb.full.last_mut() {
                        Some(last) if s <= last.1 => last.1 = last.1.max(e),
                        _ => rb.full.push((s, e)),
                    }
                }
            }
        }
        sparse.sort_by_key(|(r, _)| *r);
        Self {
            cat,
            book: Bookings {
                sparse,
                ..Bookings::default()
            },
        }
    }

    /// The busy data of resource `r`.
    pub(crate) fn busy_of(&self, r: u32) -> &ResBusy {
        if !self.book.per.is_empty() {
            return self.book.per.get(r as usize).unwrap_or(&NO_BUSY);
        }
        match self.book.sparse.binary_search_by_key(&r, |(x, _)| *x) {
            Ok(i) => self.book.sparse.get(i).map_or(&NO_BUSY, |(_, rb)| rb),
            Err(_) => &NO_BUSY,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.cat
    }

    /// The appointment with this id (appointments of a clinic file).
    pub fn appointment(&self, id: &str) -> Option<&Appointment> {
        self.book
            .appointment_index
            .get(id)
            .and_then(|i| self.book.appointments.get(*i as usize))
    }

    /// The id of the appointment with this key, when known.
    pub(crate) fn appointment_id(&self, key: u64) -> String {
        self.book
            .ids
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("#{key}"))
    }
}

impl Catalog {
    /// Validates a clinic's catalog (its appointments are ignored) and
    /// compiles it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownZone`], [`Error::RruleInvalid`], [`Error::DuplicateId`],
    /// [`Error::NotFound`] for a dangling reference, [`Error::EndBeforeStart`],
    /// [`Error::InvalidInput`] for an out-of-range field.
    pub fn new(clinic: &Clinic) -> Result<Self, Error> {
        let mut order: Vec<usize> = (0..clinic.resources.len()).collect();
        order.sort_by(|a, b| {
            let ia = clinic.resources.get(*a).map(|r| r.id.as_str());
            let ib = clinic.resources.get(*b).map(|r| r.id.as_str());
            ia.cmp(&ib)
        });
        let mut resources = Vec::with_capacity(order.len());
        let mut resource_index = HashMap::with_capacity(order.len());
        for (pos, &i) in order.iter().enumerate() {
            let Some(r) = clinic.resources.get(i) else {
                continue;
            };
            if r.id.as_str().is_empty() {
                return Err(Error::invalid(
                    format!("resources[{i}].id"),
                    "must not be empty",
                ));
            }
            if resource_index.insert(r.id.0.clone(), pos as u32).is_some() {
                return Err(Error::DuplicateId {
                    kind: RecordKind::Resource,
                    id: crate::error::truncate(&r.id.0),
                });
            }
            if r.capacity == 0 {
                return Err(Error::invalid(
                    format!("resources[{i}].capacity"),
                    "must be at least 1",
                ));
            }
            resources.push(Res {
                id: r.id.0.clone(),
                zone: parse_zone(&r.zone)?,
                capacity: r.capacity,
                rules: Vec::new(),
                overrides: Vec::new(),
                away: Vec::new(),
                away_longest: 0,
                clinic_away: Arc::from(Vec::new()),
                clinic_away_longest: 0,
                tags: r.tags.clone(),
            });
        }
        let lookup = |id: &str| -> Result<u32, Error> {
            resource_index
                .get(id)
                .copied()
                .ok_or_else(|| Error::not_found(RecordKind::Resource, id))
        };

        for (i, wh) in clinic.working_hours.iter().enumerate() {
            let r = lookup(wh.resource.as_str())?;
            let res = resources
                .get_mut(r as usize)
                .ok_or_else(|| Error::not_found(RecordKind::Resource, wh.resource.as_str()))?;
            let rule = compile_hours(wh, res.zone)
                .map_err(|e| in_field(e, &format!("working_hours[{i}]")))?;
            res.rules.push(rule);
        }

        // Overrides of one date are joined: sorted once, then merged in
        // one pass (n log n, not a search per override).
        for ov in &clinic.overrides {
            let r = lookup(ov.resource.as_str())?;
            let day = day_of_date(ov.date);
            if let Some(res) = resources.get_mut(r as usize) {
                let blocks = ov.blocks.iter().map(day_block).collect::<Vec<_>>();
                res.overrides.push((day, blocks));
            }
        }
        for res in &mut resources {
            res.overrides.sort_by_key(|(d, _)| *d);
            let mut merged: Vec<(i64, Vec<DayBlock>)> = Vec::with_capacity(res.overrides.len());
            for (day, blocks) in res.overrides.drain(..) {
                match merged.last_mut() {
                    Some((d, existing)) if *d == day => existing.extend(blocks),
                    _ => merged.push((day, blocks)),
                }
            }
            res.overrides = merged;
        }

        let mut time_off_ids = Vec::with_capacity(clinic.time_off.len());
        let mut seen_time_off = std::collections::HashSet::with_capacity(clinic.time_off.len());
        let mut clinic_wide = Vec::new();
        for (i, off) in clinic.time_off.iter().enumerate() {
            if off.id.is_empty() {
                return Err(Error::invalid(
                    format!("time_off[{i}].id"),
                    "must not be empty",
                ));
            }
            if !seen_time_off.insert(off.id.as_str()) {
                return Err(Error::DuplicateId {
                    kind: RecordKind::TimeOff,
                    id: crate::error::truncate(&off.id),
                });
            }
            let (start, end) = (off.start.timestamp(), off.end.timestamp());
            if end <= start {
                return Err(Error::EndBeforeStart {
                    what: format!("time off `{}`", crate::error::truncate(&off.id)),
                });
            }
            let away = Away {
                start,
                end,
                index: i as u32,
            };
            match &off.resource {
                Some(id) => {
                    let r = lookup(id.as_str())?;
                    if let Some(res) = resources.get_mut(r as usize) {
                        res.away.push(away);
                    }
                }
                None => clinic_wide.push(away),
            }
            time_off_ids.push(off.id.clone());
        }

        let mut types = Vec::with_capacity(clinic.appointment_types.len());
        let mut type_index = HashMap::new();
        for (i, t) in clinic.appointment_types.iter().enumerate() {
            if t.id.as_str().is_empty() {
                return Err(Error::invalid(
                    format!("appointment_types[{i}].id"),
                    "must not be empty",
                ));
            }
            if type_index.insert(t.id.0.clone(), i as u32).is_some() {
                return Err(Error::DuplicateId {
                    kind: RecordKind::AppointmentType,
                    id: crate::error::truncate(&t.id.0),
                });
            }
            types.push(compile_type(t, i, &resources, &resource_index)?);
        }

        let resource_records = order
            .iter()
            .filter_map(|&i| clinic.resources.get(i).cloned())
            .collect();
        // Clinic-wide time off is one list shared by every resource, so
        // its size does not multiply by the number of resources.
        clinic_wide.sort_by_key(|a| (a.start, a.end));
        let longest = |list: &[Away]| list.iter().map(|a| a.end - a.start).max().unwrap_or(0);
        let clinic_longest = longest(&clinic_wide);
        let clinic_wide: Arc<[Away]> = clinic_wide.into();
        for res in &mut resources {
            res.away.sort_by_key(|a| (a.start, a.end));
            res.away_longest = longest(&res.away);
            res.clinic_away = Arc::clone(&clinic_wide);
            res.clinic_away_longest = clinic_longest;
        }
        let resource_names: Arc<[String]> = resources.iter().map(|r| r.id.clone()).collect();
        Ok(Self {
            settings: clinic.settings,
            resource_names,
            resource_records,
            type_records: clinic.appointment_types.clone(),
            resources,
            resource_index,
            types,
            type_index,
            time_off_ids,
        })
    }

    pub(crate) fn resource_idx(&self, id: &str) -> Result<u32, Error> {
        self.resource_index
            .get(id)
            .copied()
            .ok_or_else(|| Error::not_found(RecordKind::Resource, id))
    }

    pub(crate) fn type_idx(&self, id: &str) -> Result<u32, Error> {
        self.type_index
            .get(id)
            .copied()
            .ok_or_else(|| Error::not_found(RecordKind::AppointmentType, id))
    }

    pub(crate) fn res(&self, idx: u32) -> Option<&Res> {
        self.resources.get(idx as usize)
    }

    pub(crate) fn ty(&self, idx: u32) -> Option<&Ty> {
        self.types.get(idx as usize)
    }

    /// Resource ids in index order (ascending).
    pub fn resource_ids(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(|r| r.id.as_str())
    }

    /// The id of the resource at `index`.
    pub fn resource_id(&self, index: u32) -> Option<&str> {
        self.res(index).map(|r| r.id.as_str())
    }

    /// The zone of a resource.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    pub fn resource_zone(&self, id: &str) -> Result<Tz, Error> {
        let idx = self.resource_idx(id)?;
        self.res(idx)
            .map(|r| r.zone)
            .ok_or_else(|| Error::not_found(RecordKind::Resource, id))
    }

    /// A copy whose type `type_idx` has no minimum notice and no horizon
    /// (for principals allowed to bypass them; the past stays closed).
    pub(crate) fn relaxed(&self, type_idx: u32) -> Catalog {
        let mut c = self.clone();
        if let Some(t) = c.types.get_mut(type_idx as usize) {
            t.notice = 0;
            t.horizon = None;
        }
        c
    }

    /// The record of a resource.
    pub fn resource(&self, id: &str) -> Option<&medsched_storage::Resource> {
        self.resource_index
            .get(id)
            .and_then(|i| self.resource_records.get(*i as usize))
    }

    /// The record of an appointment type.
    pub fn appointment_type(&self, id: &str) -> Option<&AppointmentType> {
        self.type_index
            .get(id)
            .and_then(|i| self.type_records.get(*i as usize))
    }

    /// Whether a resource is in any requirement group of a type.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown type or resource.
    pub fn can_serve(&self, type_id: &str, resource: &str) -> Result<bool, Error> {
        let t = self.type_idx(type_id)?;
        let r = self.resource_idx(resource)?;
        Ok(self
            .ty(t)
            .is_some_and(|ty| ty.groups.iter().any(|g| g.members.contains(&r))))
    }

    /// Clinic settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }
}

fn in_field(e: Error, place: &str) -> Error {
    match e {
        Error::RruleInvalid { detail } => Error::RruleInvalid {
            detail: format!("{place}: {detail}"),
        },
        other => other,
    }
}

/// Most block starts a working-hours rule may give in one local day.
pub const MAX_HOURS_STARTS_PER_DAY: usize = 24;

fn compile_hours(wh: &WorkingHours, resource_zone: Tz) -> Result<HoursRule, Error> {
    let zone = match &wh.zone {
        Some(z) => parse_zone(z)?,
        None => resource_zone,
    };
    // `end` equal to the start is a 24-hour block (an on-call day), as the
    // record documents: an end not after the start is on the next day.
    let parts = crate::recurrence::parse_rrule_parts(&wh.rrule)?;
    // A working-hours rule is expanded on every query from its DTSTART, so
    // its cadence is bounded at load: at most one block start a day per
    // FREQ step, and at most 24 block starts a day in all.
    let per_day = parts.times_per_day();
    if parts.period_secs() < crate::time::DAY || per_day > MAX_HOURS_STARTS_PER_DAY {
        return Err(Error::RecurrenceTooLarge {
            limit: MAX_HOURS_STARTS_PER_DAY,
        });
    }
    if wh.rdates.len() + wh.exdates.len() > crate::recurrence::MAX_DATES {
        return Err(Error::rrule(format!(
            "more than {} rdates and exdates",
            crate::recurrence::MAX_DATES
        )));
    }
    let mut rec = Recurrence::new(zone, wh.dtstart, &wh.rrule)?.with_policy(wh.nonexistent);
    let at = wh.dtstart.time();
    rec.add_rdates(wh.rdates.iter().map(|d| Moment::Wall(d.and_time(at))));
    rec.add_exdates(wh.exdates.iter().map(|d| Moment::Wall(d.and_time(at))));
    Ok(HoursRule {
        rec,
        end_tod: tod(wh.end),
        next_day: wh.end <= wh.dtstart.time(),
    })
}

fn compile_type(
    t: &AppointmentType,
    i: usize,
    resources: &[Res],
    index: &HashMap<String, u32>,
) -> Result<Ty, Error> {
    let f = |name: &str| format!("appointment_types[{i}].{name}");
    let step = minutes(|| f("step_min"), t.step_min, 1)?;
    let align = minutes(|| f("align_offset_min"), t.align_offset_min, 0)?;
    if align >= crate::time::DAY {
        return Err(Error::invalid(
            f("align_offset_min"),
            "must be less than a day",
        ));
    }
    if t.requirements.is_empty() {
        return Err(Error::invalid(
            f("requirements"),
            "must name at least one group",
        ));
    }
    let mut groups = Vec::with_capacity(t.requirements.len());
    for (g, req) in t.requirements.iter().enumerate() {
        let mut members: Vec<u32> = Vec::new();
        for rid in &req.resources {
            members.push(
                index
                    .get(rid.as_str())
                    .copied()
                    .ok_or_else(|| Error::not_found(RecordKind::Resource, rid.as_str()))?,
            );
        }
        if let Some(tag) = &req.tag {
            for (ri, r) in resources.iter().enumerate() {
                if r.tags.iter().any(|x| x == tag) {
                    members.push(ri as u32);
                }
            }
        }
        members.sort_unstable();
        members.dedup();
        if req.count == 0 {
            return Err(Error::invalid(
                format!("{}[{g}].count", f("requirements")),
                "must be at least 1",
            ));
        }
        if (members.len() as u32) < req.count {
            return Err(Error::invalid(
                format!("{}[{g}]", f("requirements")),
                format!("needs {} resources but names {}", req.count, members.len()),
            ));
        }
        groups.push(Group {
            count: req.count,
            members,
        });
    }
    Ok(Ty {
        duration: minutes(|| f("duration_min"), t.duration_min, 1)?,
        before: buffer(|| f("buffer_before_min"), t.buffer_before_min)?,
        after: buffer(|| f("buffer_after_min"), t.buffer_after_min)?,
        step,
        align,
        notice: minutes(|| f("min_notice_min"), t.min_notice_min, 0)?,
        horizon: t.horizon_days.map(|d| i64::from(d) * crate::time::DAY),
        max_per_day: t.max_per_day,
        max_per_week: t.max_per_week,
        groups,
    })
}

impl Bookings {
    /// The appointments of a clinic file: validated, indexed, sorted.
    fn from_appointments(cat: &Catalog, appointments: &[Appointment]) -> Result<Self, Error> {
        let mut per = vec![ResBusy::default(); cat.resources.len()];
        let mut appointment_index = HashMap::with_capacity(appointments.len());
        let mut ids = HashMap::with_capacity(appointments.len());
        let mut patient_busy: HashMap<String, Vec<(i64, i64, u64)>> = HashMap::new();
        for (i, a) in appointments.iter().enumerate() {
            if a.id.as_str().is_empty() {
                return Err(Error::invalid(
                    format!("appointments[{i}].id"),
                    "must not be empty",
                ));
            }
            if a.buffer_before_min > MAX_BUFFER_MIN || a.buffer_after_min > MAX_BUFFER_MIN {
                return Err(Error::invalid(
                    format!("appointments[{i}]"),
                    format!("buffers must be at most {MAX_BUFFER_MIN} minutes"),
                ));
            }
            if appointment_index.insert(a.id.0.clone(), i as u32).is_some() {
                return Err(Error::DuplicateId {
                    kind: RecordKind::Appointment,
                    id: crate::error::truncate(&a.id.0),
                });
            }
            ids.insert(i as u64, a.id.0.clone());
            let type_idx = match &a.type_id {
                Some(t) => Some(cat.type_idx(t.as_str())?),
                None => None,
            };
            let span = match (a.start, a.end) {
                (Some(s), Some(e)) => {
                    let (s, e) = (s.timestamp(), e.timestamp());
                    if e <= s {
                        return Err(Error::EndBeforeStart {
                            what: format!(
                                "appointment `{}`",
                                crate::error::truncate(a.id.as_str())
                            ),
                        });
                    }
                    Some((s, e))
                }
                (None, None) => None,
                _ => {
                    return Err(Error::invalid(
                        format!("appointments[{i}]"),
                        "start and end must both be given or both be absent",
                    ))
                }
            };
            let mut rs = Vec::with_capacity(a.resources.len());
            for rid in &a.resources {
                rs.push(cat.resource_idx(rid.as_str())?);
            }
            let Some((s, e)) = span else { continue };
            if !a.status.holds_time() {
                continue;
            }
            let before = i64::from(a.buffer_before_min) * MINUTE;
            let after = i64::from(a.buffer_after_min) * MINUTE;
            for r in rs {
                if let Some(rb) = per.get_mut(r as usize) {
                    rb.busy.push(Busy {
                        start: s - before,
                        end: e + after,
                        raw_start: s,
                        raw_end: e,
                        appointment: i as u64,
                        type_idx,
                    });
                }
            }
            if let Some(p) = &a.patient {
                patient_busy
                    .entry(p.0.clone())
                    .or_default()
                    .push((s, e, i as u64));
            }
        }
        for (r, rb) in per.iter_mut().enumerate() {
            let capacity = cat.resources.get(r).map_or(1, |x| x.capacity);
            rb.finish(capacity);
        }
        for v in patient_busy.values_mut() {
            v.sort_unstable();
        }
        Ok(Self {
            per,
            sparse: Vec::new(),
            ids,
            appointments: appointments.to_vec(),
            appointment_index,
            patient_busy,
        })
    }
}
