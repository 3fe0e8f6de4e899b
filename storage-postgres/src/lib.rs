//! medsched-postgres: the PostgreSQL store adapter of medsched.
//!
//! [`PgStore`] implements [`medsched_storage::Store`] on the synchronous
//! `postgres` client with a small connection pool. Every store call is one
//! transaction; [`Store::commit`](medsched_storage::Store::commit) runs a
//! whole batch in one. Double booking of capacity-one resources is made
//! impossible by the database itself (an exclusion constraint on
//! `medsched.active_bookings`); larger resources are checked under a
//! per-resource transaction lock taken in sorted order. Deadlocks,
//! serialization failures and connections lost before commit are retried
//! inside the adapter with bounded backoff, so callers see success or a
//! typed [`StorageError`], never a raw
//! SQLSTATE.
//!
//! The schema (`medsched`) is created by versioned SQL migrations in
//! `migrations/`, applied by [`PgStore::migrate`] as the schema owner.
//! Tenants are isolated by row-level security (`FORCE ROW LEVEL SECURITY`):
//! every transaction of the store sets `medsched.tenant`, and one without
//! it fails. Application servers should connect as a runtime role that is
//! neither owner nor superuser, prepared by [`PgStore::grant_runtime_role`]
//! (which also makes the audit table append-only for it).
//!
//! PHI fields (`Appointment::reason`, `Appointment::notes`) are encrypted at
//! rest with XChaCha20-Poly1305 when the store is opened with a [`KeyRing`]
//! ([`PgConfig::keyring`]): each value carries its key id, and the tenant,
//! table, column and appointment id are bound as associated data, so a
//! value copied to another row or tenant fails to decrypt (`Integrity`).
//! [`PgStore::rotate_phi`] re-encrypts under the active key in resumable
//! batches. Without a key ring (as with [`PgStore::connect`]) PHI is stored
//! in plaintext.
//!
//! ```no_run
//! use medsched_postgres::{PgConfig, PgStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let owner = PgStore::connect("host=127.0.0.1 user=medsched_owner dbname=clinic", 1)?;
//! owner.migrate()?;
//! owner.grant_runtime_role("medsched_app")?;
//! let store = PgStore::connect("host=127.0.0.1 user=medsched_app dbname=clinic", 16)?;
//! # let _ = store;
//! // With PHI encryption: the key ring from MEDSCHED_PHI_KEYS
//! // ("id1:base64key,id2:base64key", the first key active).
//! let keys = medsched_postgres::KeyRing::from_env(medsched_postgres::KEYRING_ENV)?;
//! let store = PgStore::open(
//!     PgConfig::new("host=127.0.0.1 user=medsched_app dbname=clinic")
//!         .max_connections(16)
//!         .keyring(keys),
//! )?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crypto;
mod insert;
mod migrate;
mod pool;
mod store;

use std::fmt;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medsched_storage::{StorageError, StorageErrorKind, TenantId};
use postgres::error::SqlState;
use postgres::Transaction;

pub use crypto::{KeyRing, KEYRING_ENV};
pub use insert::BookingCalls;
pub use migrate::{SetupError, SCHEMA_VERSION};
pub use store::RotationProgress;

use pool::Pool;

/// How many times a transaction is attempted before a transient failure is
/// reported as `storage_unavailable`.
pub(crate) const MAX_ATTEMPTS: u32 = 12;

/// The PostgreSQL store. Cheap to share between threads (`&PgStore` is all
/// a caller needs); connections come from an internal pool.
pub struct PgStore {
    pool: Pool,
    keyring: Option<KeyRing>,
    combiner: insert::Combiner,
}

impl fmt::Debug for PgStore {
    // The connection configuration may hold a password: not shown; the key
    // ring shows its key ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("max_connections", &self.pool.max_size())
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

/// How to open a [`PgStore`]: the connection string, the pool size
/// (default 8) and the optional PHI [`KeyRing`] (default none: PHI stored
/// in plaintext). Build it with [`PgConfig::new`] and the setters.
#[derive(Clone)]
pub struct PgConfig {
    connection: String,
    max_connections: usize,
    keyring: Option<KeyRing>,
}

impl fmt::Debug for PgConfig {
    // The connection string may hold a password: not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("max_connections", &self.max_connections)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl PgConfig {
    /// A configuration for a libpq-style connection string or a
    /// `postgresql://` URL, 8 connections, no key ring.
    pub fn new(connection: &str) -> Self {
        Self {
            connection: connection.to_owned(),
            max_connections: 8,
            keyring: None,
        }
    }

    /// At most `n` connections open at once (at least 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Encrypts PHI at rest with `keyring` (its active key for new values,
    /// any of its keys for reading).
    #[must_use]
    pub fn keyring(mut self, keyring: KeyRing) -> Self {
        self.keyring = Some(keyring);
        self
    }
}

impl PgStore {
    /// Connects to the database named by a libpq-style connection string
    /// (`host=127.0.0.1 port=5432 user=medsched dbname=clinic` or a
    /// `postgresql://` URL), with at most `max_connections` connections
    /// open at once. One connection is opened now to check that the server
    /// is reachable and that its `medsched` schema (if any) is not newer
    /// than this adapter knows; run [`PgStore::migrate`] to create or
    /// upgrade the schema.
    ///
    /// # Errors
    /// [`SetupError::SchemaTooNew`]; [`SetupError::Storage`] with kind
    /// `Invalid` for a bad connection string or `Unavailable` when the
    /// server cannot be reached.
    ///
    /// PHI is stored in plaintext: use [`PgStore::open`] with a
    /// [`KeyRing`] to encrypt it.
    pub fn connect(connection: &str, max_connections: usize) -> Result<Self, SetupError> {
        Self::open(PgConfig::new(connection).max_connections(max_connections))
    }

    /// Connects as [`PgStore::connect`] does, with the configuration's pool
    /// size and PHI key ring.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub fn open(config: PgConfig) -> Result<Self, SetupError> {
        let pg: postgres::Config = config.connection.parse().map_err(|_| {
            SetupError::Storage(StorageError::new(
                StorageErrorKind::Invalid,
                "invalid postgresql connection string",
            ))
        })?;
        let store = Self {
            pool: Pool::new(pg, config.max_connections.max(1)),
            keyring: config.keyring,
            combiner: insert::Combiner::default(),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Runs `f` in a transaction on a pooled connection and commits,
    /// retrying transient failures with bounded backoff. With a tenant, the
    /// transaction first sets `medsched.tenant` (transaction-local), which
    /// the row-level security policies require. When the
    /// connection is lost during COMMIT the outcome is unknown: the call is
    /// retried only if `retry_unknown_commit` (the transaction is
    /// read-only or idempotent), otherwise it fails with `Unavailable`.
    fn run<T>(
        &self,
        tenant: Option<&TenantId>,
        retry_unknown_commit: bool,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StorageError> {
        if tenant.is_some_and(|t| t.as_str().is_empty()) {
            return Err(StorageError::new(
                StorageErrorKind::Invalid,
                "the tenant id is empty",
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (err, at_commit) = match self.attempt(tenant, &mut f) {
                Ok(v) => return Ok(v),
                Err((Fail::Domain(e), _)) => return Err(e),
                Err((Fail::Db(e), at_commit)) => (e, at_commit),
            };
            let lost = is_connection_loss(&err);
            if at_commit && lost && !retry_unknown_commit {
                return Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    "connection lost during commit: the outcome is unknown",
                ));
            }
            if !(lost || is_retryable(&err)) {
                return Err(unavailable(&err));
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(gave_up(attempt));
            }
            thread::sleep(backoff(attempt));
        }
    }

    fn attempt<T>(
        &self,
        tenant: Option<&TenantId>,
        f: &mut impl FnMut(&mut Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, (Fail, bool)> {
        let mut conn = self.pool.get().map_err(|e| (e, false))?;
        let client = conn.client().map_err(|e| (e, false))?;
        let mut tx = client.transaction().map_err(|e| (Fail::Db(e), false))?;
        if let Some(t) = tenant {
            // With the tenant, no sequential scans where an index serves:
            // the connection keeps the plans it makes now, also those made
            // while the tables were nearly empty (migration 0006).
            tx.execute(
                "SELECT set_config('medsched.tenant', $1, true),
                        set_config('enable_seqscan', 'off', true)",
                &[&t.as_str()],
            )
            .map_err(|e| (Fail::Db(e), false))?;
        }
        let v = f(&mut tx).map_err(|e| (e, false))?;
        tx.commit().map_err(|e| (Fail::Db(e), true))?;
        Ok(v)
    }
}

/// Why a transaction attempt failed.
#[derive(Debug)]
enum Fail {
    /// A contract error (slot taken, version conflict ...): not retried.
    Domain(StorageError),
    /// A database error: retried when transient.
    Db(postgres::Error),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Domain(e)
    }
}

/// Deadlock, serialization failure, or a server going away.
pub(crate) fn is_retryable(e: &postgres::Error) -> bool {
    let Some(code) = e.code() else {
        return false;
    };
    *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || code.code().starts_with("08")
}

/// The connection is gone (or could not be made): nothing was committed
/// unless the loss happened during COMMIT.
pub(crate) fn is_connection_loss(e: &postgres::Error) -> bool {
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    e.is_closed()
        || io
        || e.code()
            .is_some_and(|c| *c == SqlState::ADMIN_SHUTDOWN || c.code().starts_with("08"))
}

/// A database error as the caller sees it: no SQL text, no values (they
/// could be PHI), only its class.
pub(crate) fn unavailable(e: &postgres::Error) -> StorageError {
    let message = match e.code() {
        Some(code) => format!("unexpected database error (sqlstate {})", code.code()),
        None => "database request failed".to_owned(),
    };
    StorageError::new(StorageErrorKind::Unavailable, message)
}

/// Retries of transient failures ran out.
pub(crate) fn gave_up(attempt: u32) -> StorageError {
    StorageError::new(
        StorageErrorKind::Unavailable,
        format!("database busy: gave up after {attempt} attempts"),
    )
}

/// 2 ms doubling per attempt, capped at 200 ms, with jitter so that the
/// losers of a deadlock do not collide again.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 2u64.saturating_mul(1 << attempt.min(7)).min(200);
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
        % base.max(1);
    Duration::from_millis(base / 2 + jitter)
}
