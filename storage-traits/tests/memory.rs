//! The adapter conformance suite, run against `MemoryStore`.

medsched_storage::conformance_tests!(medsched_storage::MemoryStore::new);
