//! The shared store conformance suite, one test per check, against one
//! fresh database of this process's server (each check uses its own
//! tenants).

medsched_storage::conformance_tests!(crate::pg::store);

/// The same suite through a runtime role that row-level security binds.
mod runtime_role {
    medsched_storage::conformance_tests!(crate::pg::app_store);
}
