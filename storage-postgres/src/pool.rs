//! A small bounded connection pool: at most `max` connections open, idle
//! ones reused, broken ones dropped.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use medsched_storage::{StorageError, StorageErrorKind};
use postgres::{Client, Config, NoTls, Statement};

use crate::Fail;

/// How long a caller waits for a free connection.
const WAIT: Duration = Duration::from_secs(30);

/// An open connection with the statements prepared on it (named server-side
/// statements live as long as their session).
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
        }
    }

    /// `sql` prepared on this connection, parsed once per session.
    pub(crate) fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

#[derive(Default)]
struct State {
    idle: Vec<Conn>,
    /// Connections open or being opened, idle ones included.
    open: usize,
}

pub(crate) struct Pool {
    config: Config,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

/// A connection lent by the pool; returned on drop.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pool {
    pub(crate) fn new(config: Config, max: usize) -> Self {
        Self {
            config,
            max,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection: an idle one, a new one while fewer than `max` are
    /// open, or the next one freed.
    pub(crate) fn get(&self) -> Result<Pooled<'_>, Fail> {
        let mut state = self.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn::new(client)),
                    }),
                    Err(e) => {
                        self.release(None);
                        Err(Fail::Db(e))
                    }
                };
            }
            let (next, timeout) = self
                .freed
                .wait_timeout(state, WAIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max {
                return Err(Fail::Domain(StorageError::new(
                    StorageErrorKind::Unavailable,
                    "no database connection free",
                )));
            }
        }
    }

    fn release(&self, conn: Option<Conn>) {
        let mut state = self.lock();
        match conn {
            Some(c) if !c.client.is_closed() => state.idle.push(c),
            _ => state.open = state.open.saturating_sub(1),
        }
        drop(state);
        self.freed.notify_one();
    }
}

impl Pooled<'_> {
    /// The connection (present until drop).
    pub(crate) fn client(&mut self) -> Result<&mut Client, Fail> {
        Ok(&mut self.conn()?.client)
    }

    /// The connection with its prepared statements (present until drop).
    pub(crate) fn conn(&mut self) -> Result<&mut Conn, Fail> {
        self.conn.as_mut().ok_or_else(|| {
            Fail::Domain(StorageError::new(
                StorageErrorKind::Unavailable,
                "database connection already returned",
            ))
        })
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take();
        self.pool.release(conn);
    }
}
