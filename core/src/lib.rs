//! medsched-core: the scheduling core of medsched.
//!
//! It answers, from plain values and without IO or a clock: which slots are
//! bookable, why a given start is not, and whether a proposed appointment or
//! a recurring series conflicts with anything. See `ARCHITECTURE.md` for the
//! crate graph and `docs/adr/` for the decisions behind the semantics.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cancellation;
pub mod document;
pub mod error;
pub mod recurrence;
pub mod time;

pub use cancellation::CancelReason;
pub use error::Error;
mod availability;
pub mod interval;
pub mod schedule;

pub use schedule::Schedule;
pub mod slots;

pub use slots::{Assignment, SlotEntry, SlotQuery, Slots};
pub mod explain;

pub use explain::{Explanation, OccurrenceReport, Proposal, Reason, SeriesProposal, SeriesReport};
pub mod clinic;

pub use clinic::{load_schedule, parse_check_request, parse_clinic, CheckRequest, Format};
pub use medsched_storage as records;
pub mod engine;
pub mod status;

pub use engine::{
    BookRequest, Booking, Clock, Engine, EngineConfig, FnClock, ManualClock, SeriesBooking,
    SeriesPolicy,
};
pub use schedule::Catalog;
mod access;
pub mod policy;
