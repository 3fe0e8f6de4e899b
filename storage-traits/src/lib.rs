//! medsched-storage: the record types that medsched stores and loads, the
//! synchronous store traits (ADR 0001), `MemoryStore` (the embedded
//! default) and, with feature `conformance`, the suite every adapter runs.
//!
//! The record types are plain data with serde support, so that a whole
//! clinic loads from one JSON or TOML file and every store persists the
//! same shapes. Nothing here holds a scheduling rule: `medsched-core`
//! validates and interprets the records and builds the batches that a store
//! applies atomically.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod memory;
pub mod records;
pub mod store;

pub use audit::{chain_hash, verify_chain, AuditRecord, ChainBreak, NewAudit, GENESIS};
pub use memory::MemoryStore;
pub use records::*;
pub use store::*;
