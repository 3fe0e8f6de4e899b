//! A small bounded connection pool: at most `max` connections open, idle
//! ones reused, broken ones dropped.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use medsched_storage::{StorageError, StorageErrorKind};
use postgres::{Client, Config, NoTls};

use crate::Fail;

/// How long a caller waits for a free connection.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    idle: Vec<Client>,
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
    client: Option<Client>,
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
            while let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        client: Some(client),
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

    fn release(&self, client: Option<Client>) {
        let mut state = self.lock();
        match client {
            Some(c) if !c.is_closed() => state.idle.push(c),
            _ => state.open = state.open.saturating_sub(1),
        }
        drop(state);
        self.freed.notify_one();
    }
}

impl Pooled<'_> {
    /// The connection (present until drop).
    pub(crate) fn client(&mut self) -> Result<&mut Client, Fail> {
        self.client.as_mut().ok_or_else(|| {
            Fail::Domain(StorageError::new(
                StorageErrorKind::Unavailable,
                "database connection already returned",
            ))
        })
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let client = self.client.take();
        self.pool.release(client);
    }
}
