//! Versioned SQL migrations of the `medsched` schema.

use std::fmt;

use medsched_storage::{StorageError, StorageErrorKind};
use postgres::Transaction;

use crate::{Fail, PgStore};

/// The newest schema version this adapter knows.
pub const SCHEMA_VERSION: i32 = 6;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_row_level_security.sql")),
    (3, include_str!("../migrations/0003_phi_bytea.sql")),
    (
        4,
        include_str!("../migrations/0004_one_round_trip_booking.sql"),
    ),
    (5, include_str!("../migrations/0005_probe_checks.sql")),
    (6, include_str!("../migrations/0006_index_plans_only.sql")),
];

/// Advisory lock key serializing migrations (any value not used elsewhere;
/// the two-key advisory locks of the store live in another key space).
const MIGRATION_LOCK: i64 = 0x6d65_6473_6368_0001;

/// Why the store could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// The database's schema is newer than this adapter: upgrade the
    /// application before using that database.
    SchemaTooNew {
        /// The version found in `medsched.schema_version`.
        found: i32,
        /// [`SCHEMA_VERSION`].
        known: i32,
    },
    /// The database could not be reached or the migration failed.
    Storage(StorageError),
}

impl SetupError {
    /// The stable snake_case code: `schema_too_new`, or the storage
    /// error's code.
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::SchemaTooNew { .. } => "schema_too_new",
            SetupError::Storage(e) => e.code(),
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::SchemaTooNew { found, known } => write!(
                f,
                "database schema version {found} is newer than this adapter knows ({known})"
            ),
            SetupError::Storage(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<SetupError> for StorageError {
    /// The one conversion bindings use: `schema_too_new` keeps its code.
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Storage(s) => s,
            other => StorageError::new(StorageErrorKind::SchemaTooNew, other.to_string()),
        }
    }
}

impl From<StorageError> for SetupError {
    fn from(e: StorageError) -> Self {
        SetupError::Storage(e)
    }
}

/// The outcome of a schema check inside a transaction.
enum Checked {
    Version(i32),
    TooNew(i32),
}

fn current_version(tx: &mut Transaction<'_>) -> Result<i32, Fail> {
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('medsched.schema_version') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    Ok(tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM medsched.schema_version",
            &[],
        )?
        .try_get(0)?)
}

fn checked(v: Result<Checked, StorageError>) -> Result<i32, SetupError> {
    match v? {
        Checked::Version(v) => Ok(v),
        Checked::TooNew(found) => Err(SetupError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        }),
    }
}

impl PgStore {
    /// The database's schema version (0 before the first migration).
    ///
    /// # Errors
    /// [`SetupError::SchemaTooNew`]; [`SetupError::Storage`] (`Unavailable`).
    pub fn schema_version(&self) -> Result<i32, SetupError> {
        checked(self.run(None, true, |tx| {
            let v = current_version(tx)?;
            Ok(if v > SCHEMA_VERSION {
                Checked::TooNew(v)
            } else {
                Checked::Version(v)
            })
        }))
    }

    pub(crate) fn check_schema(&self) -> Result<(), SetupError> {
        self.schema_version().map(|_| ())
    }

    /// Creates or upgrades the `medsched` schema: applies, in one
    /// transaction under an advisory lock (so concurrent processes migrate
    /// once), every migration newer than the recorded version, recording
    /// each in `medsched.schema_version`. Returns the version now in place.
    /// Needs a role that may create schemas and the `btree_gist` extension.
    ///
    /// # Errors
    /// [`SetupError::SchemaTooNew`] when the database is ahead of this
    /// adapter (nothing is changed); [`SetupError::Storage`] when the
    /// database is unreachable or a migration fails (nothing is changed).
    pub fn migrate(&self) -> Result<i32, SetupError> {
        checked(self.run(None, true, |tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute(
                "CREATE SCHEMA IF NOT EXISTS medsched;
                 CREATE TABLE IF NOT EXISTS medsched.schema_version (
                     version    integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );",
            )?;
            let current = current_version(tx)?;
            if current > SCHEMA_VERSION {
                return Ok(Checked::TooNew(current));
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.batch_execute(sql).map_err(|e| {
                    Fail::Domain(StorageError::new(
                        StorageErrorKind::Unavailable,
                        format!(
                            "migration {version} failed (sqlstate {})",
                            e.code().map_or("none", |c| c.code())
                        ),
                    ))
                })?;
                tx.execute(
                    "INSERT INTO medsched.schema_version (version) VALUES ($1)",
                    &[version],
                )?;
            }
            Ok(Checked::Version(SCHEMA_VERSION))
        }))
    }

    /// Grants `role` what the store needs at run time, and no more: read
    /// and write on the tenant tables, append-only on `medsched.audit`
    /// (SELECT and INSERT: the role can neither UPDATE nor DELETE audit
    /// records), read on `medsched.schema_version`. Run it as the schema
    /// owner after [`PgStore::migrate`]. The runtime role must be neither
    /// the tables' owner nor a superuser nor BYPASSRLS, so that row-level
    /// security binds it: each of its transactions sees only the tenant it
    /// sets.
    ///
    /// # Errors
    /// [`SetupError::Storage`]: `Invalid` for a role name that is not a
    /// plain lowercase identifier, `Unavailable`.
    pub fn grant_runtime_role(&self, role: &str) -> Result<(), SetupError> {
        let plain = !role.is_empty()
            && role.len() <= 63
            && role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !role.starts_with(|c: char| c.is_ascii_digit());
        if !plain {
            return Err(SetupError::Storage(StorageError::new(
                StorageErrorKind::Invalid,
                "runtime role must be a plain lowercase identifier",
            )));
        }
        let sql = format!(
            "GRANT USAGE ON SCHEMA medsched TO \"{role}\";
             GRANT SELECT ON medsched.schema_version TO \"{role}\";
             GRANT SELECT, INSERT, UPDATE, DELETE ON
                 medsched.catalogs, medsched.appointments, medsched.active_bookings,
                 medsched.idempotency, medsched.outbox, medsched.waitlist
                 TO \"{role}\";
             GRANT SELECT, INSERT ON medsched.audit TO \"{role}\";
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA medsched TO \"{role}\";"
        );
        self.run(None, true, |tx| Ok(tx.batch_execute(&sql)?))?;
        Ok(())
    }
}
