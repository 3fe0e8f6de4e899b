#![cfg(test)]
#![allow(unreachable_pub, missing_debug_implementations)]
//! The one integration-test binary of medsched-core.

mod access;
mod common;
mod dst;
mod engine;
mod model;
mod phi;
mod rfc5545;
mod robustness;
mod scheduling;
mod snapshots;
