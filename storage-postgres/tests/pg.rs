//! A throwaway PostgreSQL 15 for the test process: `initdb` into a
//! temporary folder (as the `postgres` OS user when running as root),
//! `pg_ctl start` on 127.0.0.1 with a free port, fresh databases on demand.
//! Dropping a [`PgServer`] stops it and removes the folder; the server
//! shared by a test process (a static, never dropped) is removed by a
//! watchdog process that waits for the test process to exit. Nothing is
//! skipped: if the server cannot start, the tests fail loudly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use medsched_postgres::PgStore;

/// Where the server binaries are; `MEDSCHED_PG_BIN` overrides.
fn bin(name: &str) -> String {
    let dir = std::env::var("MEDSCHED_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    format!("{dir}/{name}")
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A command run as the `postgres` OS user when we are root.
fn pg_command(as_root: bool, program: &str) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

#[track_caller]
fn run_ok(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A running throwaway server.
#[derive(Debug)]
pub(crate) struct PgServer {
    dir: PathBuf,
    port: u16,
    as_root: bool,
    watchdog: Option<Child>,
}

impl PgServer {
    /// Starts a server in a new temporary folder.
    pub(crate) fn start() -> Self {
        let as_root = is_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("medsched-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the server folder");
        let mut server = Self {
            dir,
            port: 0,
            as_root,
            watchdog: None,
        };
        // From here on, a failure drops `server`, which removes the folder.
        if as_root {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres"]).arg(&server.dir);
            run_ok(c, "chown of the server folder");
        }
        let data = server.data();
        let mut c = pg_command(as_root, &bin("initdb"));
        c.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--locale=C"])
            .args(["--encoding=UTF8", "--no-sync"]);
        run_ok(c, "initdb");
        server.spawn_watchdog();

        // The port may be taken between the probe and the start: try again.
        for attempt in 0..5 {
            server.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=200",
                server.port,
                server.dir.display()
            );
            let mut c = pg_command(as_root, &bin("pg_ctl"));
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let status = c.status().expect("run pg_ctl start");
            if status.success() {
                return server;
            }
            if attempt == 4 {
                let log =
                    std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                panic!("postgresql did not start ({status}); server log:\n{log}");
            }
        }
        unreachable!()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Stops the server and removes the folder once this process exits,
    /// even if it is killed: a detached shell polls for our pid.
    fn spawn_watchdog(&mut self) {
        let pg_ctl = bin("pg_ctl");
        let stop = if self.as_root {
            format!("runuser -u postgres -- {pg_ctl}")
        } else {
            pg_ctl
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        let child = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the cleanup watchdog");
        self.watchdog = Some(child);
    }

    /// The connection string of a database.
    pub(crate) fn url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }

    /// Creates a new, empty database and returns its connection string.
    pub(crate) fn fresh_database(&self, prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}_{}", N.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the throwaway server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
        self.url(&name)
    }

    /// The server folder.
    #[allow(dead_code)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.port != 0 {
            let mut c = pg_command(self.as_root, &bin("pg_ctl"));
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server shared by this test process.
pub(crate) fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

/// A migrated store on this process's fresh conformance database.
pub(crate) fn store() -> PgStore {
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL.get_or_init(|| server().fresh_database("conformance"));
    let store = PgStore::connect(url, 16).expect("connect to the test database");
    store.migrate().expect("migrate the test database");
    store
}

/// The runtime role of the conformance run under row-level security.
pub(crate) const APP_ROLE: &str = "medsched_app";

/// A store on a fresh database migrated by the owner, connected as
/// [`APP_ROLE`]: neither owner nor superuser, so row-level security binds.
pub(crate) fn app_store() -> PgStore {
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL.get_or_init(|| {
        let owner_url = server().fresh_database("conformance_app");
        let owner = PgStore::connect(&owner_url, 1).expect("connect as owner");
        owner.migrate().expect("migrate");
        let mut admin = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            ))
            .expect("create the runtime role");
        owner.grant_runtime_role(APP_ROLE).expect("grant");
        owner_url.replace("user=postgres", &format!("user={APP_ROLE}"))
    });
    PgStore::connect(url, 16).expect("connect as the runtime role")
}

/// The runtime role of [`own_app_store`] (created once per server).
const OWN_APP_ROLE: &str = "medsched_own_app";

/// A store on a new database of its own, migrated by the owner and
/// connected as a runtime role that row-level security binds (as
/// [`app_store`]), and the owner's connection string: for tests that lock
/// tables or count sessions, which a shared database would disturb.
pub(crate) fn own_app_store(prefix: &str) -> (PgStore, String) {
    static ROLE: OnceLock<()> = OnceLock::new();
    let owner_url = server().fresh_database(prefix);
    let owner = PgStore::connect(&owner_url, 1).expect("connect as owner");
    owner.migrate().expect("migrate");
    ROLE.get_or_init(|| {
        let mut admin = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {OWN_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            ))
            .expect("create the runtime role");
    });
    owner.grant_runtime_role(OWN_APP_ROLE).expect("grant");
    let url = owner_url.replace("user=postgres", &format!("user={OWN_APP_ROLE}"));
    let store = PgStore::connect(&url, 16).expect("connect as the runtime role");
    (store, owner_url)
}
