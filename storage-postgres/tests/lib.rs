//! Integration tests of medsched-postgres against a throwaway PostgreSQL 15
//! that this test process starts on 127.0.0.1 and removes afterwards.
//!
//! Test code: the harness helpers unwrap and panic on purpose (a server
//! that cannot start must fail the run loudly).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod combine;
mod commit_kill;
mod conformance;
mod encryption;
mod multiprocess;
mod pg;
mod plans;
mod rls;
mod schema;
mod stress;
