//! medsched-storage: the record types that medsched stores and loads.
//!
//! These are plain data with serde support, so that a whole clinic loads
//! from one JSON or TOML file and so that every store (the embedded
//! `MemoryStore`, the PostgreSQL adapter) persists the same shapes. They hold
//! no scheduling rule: `medsched-core` validates and interprets them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod records;

pub use records::*;
