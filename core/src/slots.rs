//! Slot search over requirement groups, and the public availability queries.

use chrono::{DateTime, Utc};

use crate::availability::Evaluator;
use crate::error::Error;
use crate::interval::Span;
use crate::schedule::{Schedule, Ty};
use crate::time::{utc_of, DAY};

/// Longest query window, in days.
pub const MAX_WINDOW_DAYS: i64 = 400;

/// Most (resource, start) entries one slot query returns; a larger answer
/// is refused with [`Error::OutputTooLarge`] (one resource on a one-minute
/// grid for 400 days has 576,000).
pub const MAX_SLOT_ENTRIES: usize = 1_000_000;

/// A slot query: bookable starts of one appointment type in `[from, to)`.
#[derive(Debug, Clone)]
pub struct SlotQuery {
    /// Appointment type id.
    pub type_id: String,
    /// Window start (slot starts at or after it).
    pub from: DateTime<Utc>,
    /// Window end (slot starts before it).
    pub to: DateTime<Utc>,
    /// The current instant; notice and horizon count from it.
    pub now: DateTime<Utc>,
    /// Only these resources may be assigned (all eligible ones when empty).
    pub resources: Vec<String>,
}

/// One resource able to take the appointment at one start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotEntry {
    /// Resource index (index order is id order); see [`crate::Catalog::resource_id`].
    pub resource: u32,
    /// Start instant, seconds since the epoch.
    pub start: i64,
}

/// One bookable start with a full assignment (one resource list per group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Start instant, seconds since the epoch.
    pub start: i64,
    /// For each requirement group, the resources a booking would take.
    pub groups: Vec<Vec<u32>>,
}

/// The answer to a [`SlotQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// Duration of the appointment, seconds.
    pub duration: i64,
    /// Every (resource, start) where that resource can take part in a
    /// booking at that start; sorted by resource id, then start.
    pub entries: Vec<SlotEntry>,
    /// For types with several seats, the assignment found for each start;
    /// `None` for "one of these resources" types, where any entry is one.
    general: Option<Vec<Assignment>>,
    /// Resource ids by index, of the catalog these slots were computed from.
    names: std::sync::Arc<[String]>,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            duration: 0,
            entries: Vec::new(),
            general: None,
            names: std::sync::Arc::from(Vec::new()),
        }
    }
}

impl Slots {
    /// The id of the resource at `index`, in the catalog these slots were
    /// computed from (safe even if the catalog was replaced since).
    pub fn resource_id(&self, index: u32) -> Option<&str> {
        self.names.get(index as usize).map(String::as_str)
    }

    /// Every bookable start, ascending, each with one full assignment (for
    /// "one of these resources" types: the first resource by id).
    pub fn assignments(&self) -> Vec<Assignment> {
        if let Some(general) = &self.general {
            return general.clone();
        }
        let mut pairs: Vec<(i64, u32)> =
            self.entries.iter().map(|e| (e.start, e.resource)).collect();
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        pairs
            .into_iter()
            .map(|(start, r)| Assignment {
                start,
                groups: vec![vec![r]],
            })
            .collect()
    }

    /// Every bookable start, ascending and distinct.
    pub fn starts(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.entries.iter().map(|e| e.start).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Number of distinct bookable starts.
    pub fn len(&self) -> usize {
        match &self.general {
            Some(g) => g.len(),
            None => self.starts().len(),
        }
    }

    /// Whether nothing is bookable.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub(crate) struct Prepared {
    pub(crate) type_idx: u32,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) now: i64,
    /// Candidate resources (sorted) and for each the groups it is in.
    pub(crate) candidates: Vec<u32>,
}

pub(crate) fn check_window(from: i64, to: i64) -> Result<(), Error> {
    if to <= from {
        return Err(Error::EndBeforeStart {
            what: "window".into(),
        });
    }
    let days = (to - from + DAY - 1) / DAY;
    if days > MAX_WINDOW_DAYS {
        return Err(Error::WindowTooLarge {
            days,
            max_days: MAX_WINDOW_DAYS,
        });
    }
    Ok(())
}

impl Schedule {
    fn prepare(&self, q: &SlotQuery) -> Result<Prepared, Error> {
        let type_idx = self.type_idx(&q.type_id)?;
        let (from, to, now) = (q.from.timestamp(), q.to.timestamp(), q.now.timestamp());
        check_window(from, to)?;
        let ty = self
            .ty(type_idx)
            .ok_or_else(|| Error::invalid("type", "unknown"))?;
        let mut allowed = Vec::with_capacity(q.resources.len());
        for id in &q.resources {
            allowed.push(self.resource_idx(id)?);
        }
        let mut candidates: Vec<u32> = ty
            .groups
            .iter()
            .flat_map(|g| g.members.iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if !allowed.is_empty() {
            candidates.retain(|c| allowed.contains(c));
        }
        Ok(Prepared {
            type_idx,
            from,
            to,
            now,
            candidates,
        })
    }

    /// Bookable slots of a type in a window.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown type or resource,
    /// [`Error::EndBeforeStart`] and [`Error::WindowTooLarge`] for a bad window.
    pub fn slots(&self, q: &SlotQuery) -> Result<Slots, Error> {
        let p = self.prepare(q)?;
        let per = self.starts_for(&p, &p.candidates)?;
        Ok(self.assemble(&p, per))
    }

    /// Like [`Schedule::slots`], with the resources split over `threads`
    /// OS threads.
    ///
    /// # Errors
    ///
    /// As [`Schedule::slots`].
    pub fn slots_parallel(&self, q: &SlotQuery, threads: usize) -> Result<Slots, Error> {
        let p = self.prepare(q)?;
        let threads = threads.clamp(1, 64).min(p.candidates.len().max(1));
        if threads <= 1 {
            let per = self.starts_for(&p, &p.candidates)?;
            return Ok(self.assemble(&p, per));
        }
        let chunk = p.candidates.len().div_ceil(threads);
        let parts: Vec<Vec<SlotEntry>> = std::thread::scope(|scope| {
            let handles: Vec<_> = p
                .candidates
                .chunks(chunk)
                .map(|c| scope.spawn(|| self.starts_for(&p, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::internal("slot search thread panicked")))
                })
                .collect::<Result<Vec<_>, Error>>()
        })?;
        if parts.iter().map(Vec::len).sum::<usize>() > MAX_SLOT_ENTRIES {
            return Err(Error::OutputTooLarge {
                what: "slot entries",
                limit: MAX_SLOT_ENTRIES,
            });
        }
        // The first part keeps its buffer; the others are appended.
        let mut parts = parts.into_iter();
        let mut entries = parts.next().unwrap_or_default();
        let rest: Vec<Vec<SlotEntry>> = parts.collect();
        entries.reserve_exact(rest.iter().map(Vec::len).sum());
        for part in rest {
            entries.extend_from_slice(&part);
        }
        Ok(self.assemble(&p, entries))
    }

    /// Entries `(resource, start)` of the candidate resources, in the
    /// order of `resources` then start.
    fn starts_for(&self, p: &Prepared, resources: &[u32]) -> Result<Vec<SlotEntry>, Error> {
        let Some(ty) = self.ty(p.type_idx) else {
            return Ok(Vec::new());
        };
        let mut ev = Evaluator::new(self, p.from - ty.reach_before(), p.to + ty.reach_after());
        let mut out = Vec::new();
        for (k, &r) in resources.iter().enumerate() {
            let Some(res) = self.res(r) else { continue };
            ev.resource_starts(
                res,
                self.busy_of(r),
                p.type_idx,
                ty,
                p.from,
                p.to,
                p.now,
                |start| {
                    out.push(SlotEntry { resource: r, start });
                },
            );
            if out.len() > MAX_SLOT_ENTRIES {
                return Err(Error::OutputTooLarge {
                    what: "slot entries",
                    limit: MAX_SLOT_ENTRIES,
                });
            }
            if k == 0 {
                // Size the rest on the first resource, to spare regrowth.
                out.reserve(
                    out.len()
                        .saturating_mul(resources.len())
                        .min(MAX_SLOT_ENTRIES),
                );
            }
        }
        ev.check()?;
        Ok(out)
    }

    fn assemble(&self, p: &Prepared, entries: Vec<SlotEntry>) -> Slots {
        let Some(ty) = self.ty(p.type_idx) else {
            return Slots::default();
        };
        if ty.is_single_choice() {
            // Resources were visited in index (= id) order: already sorted.
            return Slots {
                duration: ty.duration,
                entries,
                general: None,
                names: std::sync::Arc::clone(&self.resource_names),
            };
        }
        // General case: a start is bookable when the groups can be filled
        // with distinct resources free at that start.
        let mut all: Vec<(i64, u32)> = entries.iter().map(|e| (e.start, e.resource)).collect();
        all.sort_unstable();
        let mut entries = Vec::new();
        let mut assignments = Vec::new();
        let mut i = 0usize;
        while let Some(&(s, _)) = all.get(i) {
            let mut j = i;
            let mut free: Vec<u32> = Vec::new();
            while let Some(&(s2, r)) = all.get(j) {
                if s2 != s {
                    break;
                }
                free.push(r);
                j += 1;
            }
            if let Some(groups) = assign(ty, &free, None) {
                // Every group's seats are filled, so a free member of any
                // group can take part: it replaces a holder of one of its
                // group's seats, or holds one already.
                entries.extend(free.iter().map(|&r| SlotEntry {
                    resource: r,
                    start: s,
                }));
                assignments.push(Assignment { start: s, groups });
            }
            i = j;
        }
        entries.sort_unstable();
        Slots {
            duration: ty.duration,
            entries,
            general: Some(assignments),
            names: std::sync::Arc::clone(&self.resource_names),
        }
    }

    /// Open time of a resource in a window: working hours (with overrides)
    /// less time off.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::EndBeforeStart`], [`Error::WindowTooLarge`].
    pub fn open(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Span>, Error> {
        let (r, from, to) = self.window_for(resource, from, to)?;
        let res = self
            .res(r)
            .ok_or_else(|| Error::invalid("resource", "unknown"))?;
        let mut ev = Evaluator::new(self, from, to);
        let open = ev.open(res, from, to).to_vec();
        ev.check()?;
        Ok(open)
    }

    /// Busy time of a resource in a window: where appointments (widened by
    /// their recorded buffers) use up its capacity.
    ///
    /// # Errors
    ///
    /// As [`Schedule::open`].
    pub fn busy(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Span>, Error> {
        let (r, from, to) = self.window_for(resource, from, to)?;
        let mut ev = Evaluator::new(self, from, to);
        Ok(ev.busy(self.busy_of(r), from, to).to_vec())
    }

    /// Free time of a resource in a window: open less busy.
    ///
    /// # Errors
    ///
    /// As [`Schedule::open`].
    pub fn free(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Span>, Error> {
        let (r, from, to) = self.window_for(resource, from, to)?;
        let res = self
            .res(r)
            .ok_or_else(|| Error::invalid("resource", "unknown"))?;
        let mut ev = Evaluator::new(self, from, to);
        ev.free(res, self.busy_of(r), from, to);
        ev.check()?;
        Ok(ev.free.clone())
    }

    fn window_for(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(u32, i64, i64), Error> {
        let r = self.resource_idx(resource)?;
        let (from, to) = (from.timestamp(), to.timestamp());
        check_window(from, to)?;
        Ok((r, from, to))
    }
}

/// Fills the type's groups from `free` resources with distinct resources;
/// `force` puts one resource into one group first. Returns the resources
/// per group.
///
/// A bipartite b-matching (resources to groups of `count` seats): groups
/// are filled in order, each seat by its first free member, and when none
/// is left, by an augmenting path found breadth-first over groups. Every
/// path assigns one more resource and unassigns none, so the work is
/// polynomial: O(seats × free × groups), never an enumeration of subsets.
pub(crate) fn assign(ty: &Ty, free: &[u32], force: Option<(usize, u32)>) -> Option<Vec<Vec<u32>>> {
    let ng = ty.groups.len();
    // For each group, the indices into `free` of its members.
    let members: Vec<Vec<usize>> = ty
        .groups
        .iter()
        .map(|g| {
            (0..free.len())
                .filter(|&k| {
                    free.get(k)
                        .is_some_and(|r| g.members.binary_search(r).is_ok())
                })
                .collect()
        })
        .collect();
    let mut holder: Vec<Option<usize>> = vec![None; free.len()];
    let mut need: Vec<u32> = ty.groups.iter().map(|g| g.count).collect();
    if let Some((g, r)) = force {
        let k = free.iter().position(|x| *x == r)?;
        let n = need.get_mut(g)?;
        *n = n.checked_sub(1)?;
        *holder.get_mut(k)? = Some(g);
    }
    let mut cursor = vec![0usize; ng];
    for g in 0..ng {
        while need.get(g).copied().unwrap_or(0) > 0 {
            let list = members.get(g)?;
            let c = cursor.get_mut(g)?;
            // Assigned resources stay assigned, so the cursor only advances.
            while list
                .get(*c)
                .is_some_and(|&k| holder.get(k).copied().flatten().is_some())
            {
                *c += 1;
            }
            match list.get(*c) {
                Some(&k) => *holder.get_mut(k)? = Some(g),
                None => augment(&members, &mut holder, g)?,
            }
            *need.get_mut(g)? -= 1;
        }
    }
    let mut groups = vec![Vec::new(); ng];
    for (k, h) in holder.iter().enumerate() {
        if let (Some(g), Some(&r)) = (h, free.get(k)) {
            groups.get_mut(*g)?.push(r);
        }
    }
    groups.iter_mut().for_each(|v| v.sort_unstable());
    Some(groups)
}

/// Gives group `g` one more resource along a shortest alternating path:
/// `g` takes a member held by group `h`, `h` takes another ... until a
/// group takes an unassigned member. `None` when there is no such path.
fn augment(members: &[Vec<usize>], holder: &mut [Option<usize>], g: usize) -> Option<()> {
    let mut parent: Vec<Option<(usize, usize)>> = vec![None; members.len()];
    let mut seen = vec![false; members.len()];
    *seen.get_mut(g)? = true;
    let mut queue = std::collections::VecDeque::from([g]);
    while let Some(x) = queue.pop_front() {
        for &k in members.get(x)? {
            match holder.get(k).copied().flatten() {
                None => {
                    // Shift every resource along the path by one group.
                    *holder.get_mut(k)? = Some(x);
                    let mut at = x;
                    while at != g {
                        let (prev, moved) = parent.get(at).copied().flatten()?;
                        *holder.get_mut(moved)? = Some(prev);
                        at = prev;
                    }
                    return Some(());
                }
                Some(h) if !seen.get(h).copied().unwrap_or(true) => {
                    *seen.get_mut(h)? = true;
                    *parent.get_mut(h)? = Some((x, k));
                    queue.push_back(h);
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// Formats a slot start for display.
pub fn slot_time(start: i64) -> DateTime<Utc> {
    utc_of(start)
}
