//! PHI encryption at rest: moved or altered ciphertexts are integrity
//! errors, keys rotate in resumable batches, and no PHI sentinel can be
//! found in the data directory, the WAL or a `pg_dump` (while the same scan
//! finds them with encryption off). The conformance suite also runs on an
//! encrypted store here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use medsched_postgres::{KeyRing, PgConfig, PgStore};
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Idempotency, Op, Phi, StorageErrorKind, Store, TenantId,
};

use crate::pg::{server, PgServer};

fn ring(active: &str, ids: &[&str]) -> KeyRing {
    let keys = ids.iter().map(|id| {
        let mut k = [0u8; 32];
        for (i, b) in id.bytes().enumerate() {
            k[i % 32] ^= b;
        }
        k[31] = 0xa5;
        ((*id).to_owned(), k)
    });
    KeyRing::new(active, keys).unwrap()
}

fn open(url: &str, keys: Option<KeyRing>) -> PgStore {
    let mut config = PgConfig::new(url).max_connections(4);
    if let Some(k) = keys {
        config = config.keyring(k);
    }
    PgStore::open(config).unwrap()
}

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 8, 0, 0).unwrap() + chrono::TimeDelta::minutes(min)
}

fn appt(id: &str, n: i64, reason: String, notes: String) -> Appointment {
    Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec!["room".into()],
        start: Some(at(n * 30)),
        end: Some(at(n * 30 + 30)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: Some(Phi(reason)),
        notes: Some(Phi(notes)),
    }
}

fn insert(a: Appointment) -> Op {
    Op::Insert {
        appointment: a,
        hold_expires_at: None,
        claims: vec![],
        overbook: false,
    }
}

fn commit(store: &PgStore, t: &TenantId, ops: Vec<Op>) {
    store
        .commit(
            t,
            Batch {
                now: at(0),
                idempotency: None,
                ops,
            },
        )
        .unwrap();
}

/// A superuser connection (bypasses row-level security).
fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn unique_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

#[test]
fn moved_or_altered_ciphertexts_are_integrity_errors() {
    let url = server().fresh_database("enc_moved");
    let store = open(&url, Some(ring("k1", &["k1"])));
    store.migrate().unwrap();
    let (ta, tb) = (TenantId::from("enc-a"), TenantId::from("enc-b"));
    let phi = |s: &str| format!("PHI-{s}-secret");
    for t in [&ta, &tb] {
        commit(
            &store,
            t,
            vec![
                insert(appt("x1", 0, phi("r1"), phi("n1"))),
                insert(appt("x2", 1, phi("r2"), phi("n2"))),
                insert(appt("x3", 2, phi("r3"), phi("n3"))),
                insert(appt("x4", 3, phi("r4"), phi("n4"))),
            ],
        );
    }
    let a = store.appointment(&ta, &"x1".into()).unwrap();
    assert_eq!(a.appointment.reason.as_ref().unwrap().0, phi("r1"));
    assert_eq!(a.appointment.notes.as_ref().unwrap().0, phi("n1"));

    let mut su = admin(&url);
    let stored: Vec<u8> = su
        .query_one(
            "SELECT reason FROM medsched.appointments WHERE tenant_id = 'enc-a' AND id = 'x1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored[0], 1, "version byte of an encrypted value");
    assert_eq!(
        &stored[1..4],
        b"\x02k1",
        "key id stored with the ciphertext"
    );
    assert!(!String::from_utf8_lossy(&stored).contains("PHI-"));

    let expect_integrity = |store: &PgStore, t: &TenantId, id: &str, what: &str| {
        let e = store.appointment(t, &id.into()).unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::Integrity, "{what}: {e}");
        assert_eq!(e.code(), "integrity_error");
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{id}`")), "{what}: {msg}");
        assert!(!msg.contains("PHI-") && !msg.contains("secret"), "{msg}");
        assert_eq!(msg.lines().count(), 1);
    };

    // Another row of the same tenant.
    su.batch_execute(
        "UPDATE medsched.appointments d SET reason = s.reason FROM medsched.appointments s
         WHERE s.tenant_id = 'enc-a' AND s.id = 'x1' AND d.tenant_id = 'enc-a' AND d.id = 'x2'",
    )
    .unwrap();
    expect_integrity(&store, &ta, "x2", "copied to another row");
    // The same appointment id in another tenant.
    su.batch_execute(
        "UPDATE medsched.appointments d SET notes = s.notes FROM medsched.appointments s
         WHERE s.tenant_id = 'enc-a' AND s.id = 'x1' AND d.tenant_id = 'enc-b' AND d.id = 'x1'",
    )
    .unwrap();
    expect_integrity(&store, &tb, "x1", "copied to another tenant");
    // Another column of the same row.
    su.batch_execute(
        "UPDATE medsched.appointments SET notes = reason
         WHERE tenant_id = 'enc-a' AND id = 'x3'",
    )
    .unwrap();
    expect_integrity(&store, &ta, "x3", "copied to another column");
    // A flipped bit in the ciphertext body, then in the tag.
    su.batch_execute(
        "UPDATE medsched.appointments SET reason = set_byte(reason, 30, get_byte(reason, 30) # 4)
         WHERE tenant_id = 'enc-a' AND id = 'x4'",
    )
    .unwrap();
    expect_integrity(&store, &ta, "x4", "flipped bit in the body");
    su.batch_execute(
        "UPDATE medsched.appointments
         SET notes = set_byte(notes, length(notes) - 1, get_byte(notes, length(notes) - 1) # 128)
         WHERE tenant_id = 'enc-b' AND id = 'x4'",
    )
    .unwrap();
    expect_integrity(&store, &tb, "x4", "flipped bit in the tag");
    // The untouched row still reads.
    let b2 = store.appointment(&tb, &"x2".into()).unwrap();
    assert_eq!(b2.appointment.notes.as_ref().unwrap().0, phi("n2"));

    // A key ring without the value's key, and no key ring at all.
    let other = open(&url, Some(ring("k2", &["k2"])));
    expect_integrity(&other, &tb, "x2", "unknown key id");
    let plain = open(&url, None);
    expect_integrity(&plain, &tb, "x2", "no key ring");
    // Rotation without a key ring is refused.
    assert_eq!(
        plain.rotate_phi(10).unwrap_err().kind(),
        StorageErrorKind::Invalid
    );
}

#[test]
fn idempotent_replay_reads_phi_through_the_key_ring() {
    let url = server().fresh_database("enc_idem");
    let store = open(&url, Some(ring("k1", &["k1"])));
    store.migrate().unwrap();
    let t = TenantId::from("enc-idem");
    let batch = || Batch {
        now: at(0),
        idempotency: Some(Idempotency {
            key: "req-1".to_owned(),
            fingerprint: "fp".to_owned(),
        }),
        ops: vec![insert(appt("i1", 0, "why".into(), "what".into()))],
    };
    let first = store.commit(&t, batch()).unwrap();
    assert!(!first.replayed);
    let again = store.commit(&t, batch()).unwrap();
    assert!(again.replayed);
    assert_eq!(again.appointments, first.appointments);
    let (_, looked) = store.idempotent(&t, "req-1").unwrap().unwrap();
    let a = &looked.appointments[0].appointment;
    assert_eq!(a.reason.as_ref().unwrap().0, "why");
    assert_eq!(a.notes.as_ref().unwrap().0, "what");
}

#[test]
fn rotation_resumes_after_an_interruption() {
    const ROWS: usize = 1000;
    let url = server().fresh_database("enc_rotate");
    let store = open(&url, Some(ring("k1", &["k1"])));
    store.migrate().unwrap();
    let tenants: Vec<TenantId> = ["rot-a", "rot-b", "rot-c"].map(TenantId::from).to_vec();
    let reason = |n: usize| format!("reason {n}");
    let notes = |n: usize| format!("notes {n}");
    let id = |n: usize| format!("r{n}");
    let tenant_of = |n: usize| &tenants[n % tenants.len()];
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(100) {
        for t in &tenants {
            let ops: Vec<Op> = chunk
                .iter()
                .filter(|&&n| tenant_of(n) == t)
                .map(|&n| insert(appt(&id(n), n as i64, reason(n), notes(n))))
                .collect();
            commit(&store, t, ops);
        }
    }
    drop(store);

    let started = Instant::now();
    let rotating = open(&url, Some(ring("k2", &["k2", "k1"])));
    for b in 1..=3u64 {
        let p = rotating.rotate_phi(100).unwrap();
        assert_eq!(p.rotated, 100);
        assert_eq!(p.remaining, ROWS as u64 - 100 * b);
        assert_eq!(p.active_key, "k2");
    }
    // "Crash": the store goes away after three committed batches.
    drop(rotating);
    let mut su = admin(&url);
    let under = |su: &mut postgres::Client| -> Vec<(String, i64, Option<String>)> {
        su.query(
            "SELECT tenant_id, key, phi_key FROM medsched.appointments ORDER BY tenant_id, key",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    };
    let rows = under(&mut su);
    assert_eq!(rows.len(), ROWS);
    // The first 300 rows in (tenant, key) order are done, the rest not.
    for (i, (_, _, key)) in rows.iter().enumerate() {
        let want = if i < 300 { "k2" } else { "k1" };
        assert_eq!(key.as_deref(), Some(want), "row {i}");
    }

    let resumed = open(&url, Some(ring("k2", &["k2", "k1"])));
    let mut batches = 0;
    loop {
        let p = resumed.rotate_phi(100).unwrap();
        if p.rotated > 0 {
            batches += 1;
        }
        if p.is_done() {
            break;
        }
        assert!(batches < 20, "rotation does not finish");
    }
    assert_eq!(batches, 7);
    assert!(resumed.rotate_phi(100).unwrap().is_done());
    let rotation_time = started.elapsed();

    // Every stored value carries key id k2 (read from the bytes themselves).
    let old: i64 = su
        .query_one(
            "SELECT count(*) FROM medsched.appointments
             WHERE phi_key IS DISTINCT FROM 'k2'
                OR get_byte(reason, 0) <> 1 OR get_byte(notes, 0) <> 1
                OR convert_from(substring(reason FROM 3 FOR get_byte(reason, 1)), 'UTF8') <> 'k2'
                OR convert_from(substring(notes FROM 3 FOR get_byte(notes, 1)), 'UTF8') <> 'k2'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(old, 0);
    // Readable with the new key alone; versions unchanged.
    let only_new = open(&url, Some(ring("k2", &["k2"])));
    for n in 0..ROWS {
        let s = only_new
            .appointment(tenant_of(n), &id(n).as_str().into())
            .unwrap();
        assert_eq!(s.version, 1);
        assert_eq!(s.appointment.reason.as_ref().unwrap().0, reason(n));
        assert_eq!(s.appointment.notes.as_ref().unwrap().0, notes(n));
    }
    eprintln!("rotation of {ROWS} rows in batches of 100: {rotation_time:?}");
}

/// Distinct sentinels `PREFIX<n>-<R|N>-` found in `hay`, raw or as the
/// lowercase hex of their bytes (how `bytea` appears in a dump).
fn sentinels_in(hay: &[u8], prefix: &str, found: &mut BTreeSet<(u32, u8)>) {
    let parse = |tail: &[u8], found: &mut BTreeSet<(u32, u8)>| {
        let digits: Vec<u8> = tail
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse::<u32>() else {
            return;
        };
        if let (Some(b'-'), Some(&field)) = (tail.get(digits.len()), tail.get(digits.len() + 1)) {
            found.insert((n, field));
        }
    };
    for pos in memchr::memmem::find_iter(hay, prefix.as_bytes()) {
        let start = pos + prefix.len();
        parse(&hay[start..hay.len().min(start + 12)], found);
    }
    let hex_prefix: String = prefix.bytes().map(|b| format!("{b:02x}")).collect();
    for pos in memchr::memmem::find_iter(hay, hex_prefix.as_bytes()) {
        let start = pos + hex_prefix.len();
        let tail: Vec<u8> = hay[start..hay.len().min(start + 24)]
            .chunks_exact(2)
            .map_while(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
            .collect();
        parse(&tail, found);
    }
}

fn scan_dir(dir: &Path, prefix: &str, found: &mut BTreeSet<(u32, u8)>, bytes: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            scan_dir(&path, prefix, found, bytes);
        } else if kind.is_file() {
            // Files may vanish while the server runs: skip those.
            if let Ok(data) = std::fs::read(&path) {
                *bytes += data.len() as u64;
                sentinels_in(&data, prefix, found);
            }
        }
    }
}

/// The server of the scan tests: its own data directory, so the scan
/// reads only what these tests wrote (plus the template databases).
fn scan_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

fn pg_dump(srv: &PgServer, url: &str, file: &Path) {
    let bin = std::env::var("MEDSCHED_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap();
    let pg_dump = format!("{bin}/pg_dump");
    let mut c = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_dump]);
        c
    } else {
        Command::new(&pg_dump)
    };
    let out = c
        .arg("-d")
        .arg(url)
        .arg("-f")
        .arg(file)
        .current_dir(srv.dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `rows` appointments whose reason and notes hold unique sentinels
/// (`SENTINEL-<mode>-<tag>-<n>-R-...`), checkpoints, and returns how many
/// distinct sentinels the data directory (base/, global/, pg_wal/ ...) and
/// a `pg_dump` of the database hold.
fn write_and_scan(encrypted: bool) -> (usize, usize) {
    const ROWS: usize = 1000;
    let started = Instant::now();
    let srv = scan_server();
    let mode = if encrypted { "ON" } else { "OFF" };
    let url = srv.fresh_database(&format!("scan_{}", mode.to_lowercase()));
    let store = open(&url, encrypted.then(|| ring("scan", &["scan"])));
    store.migrate().unwrap();
    let prefix = format!("SENTINEL-{mode}-{}-", unique_tag());
    let t = TenantId::from("scan");
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(100) {
        let ops = chunk
            .iter()
            .map(|&n| {
                insert(appt(
                    &format!("s{n}"),
                    n as i64,
                    format!("{prefix}{n}-R-chest pain"),
                    format!("{prefix}{n}-N-follow up"),
                ))
            })
            .collect();
        commit(&store, &t, ops);
    }
    // The store reads them back in clear.
    let s = store.appointment(&t, &"s7".into()).unwrap();
    assert_eq!(
        s.appointment.reason.as_ref().unwrap().0,
        format!("{prefix}7-R-chest pain")
    );
    drop(store);
    admin(&url).batch_execute("CHECKPOINT").unwrap();

    let data = srv.dir().join("data");
    let (mut in_files, mut bytes) = (BTreeSet::new(), 0u64);
    for sub in ["base", "global", "pg_wal"] {
        assert!(data.join(sub).is_dir(), "{sub} in the data directory");
    }
    scan_dir(&data, &prefix, &mut in_files, &mut bytes);
    let dump = srv.dir().join(format!("dump-{mode}.sql"));
    pg_dump(srv, &url, &dump);
    let mut in_dump = BTreeSet::new();
    let dumped = std::fs::read(&dump).unwrap();
    sentinels_in(&dumped, &prefix, &mut in_dump);
    let _ = std::fs::remove_file(&dump);
    eprintln!(
        "encryption {mode}: {} of {} sentinels in the data directory ({} MB scanned), \
         {} in pg_dump ({} kB), {:?}",
        in_files.len(),
        2 * ROWS,
        bytes / 1_000_000,
        in_dump.len(),
        dumped.len() / 1000,
        started.elapsed()
    );
    (in_files.len(), in_dump.len())
}

#[test]
fn no_sentinel_at_rest_with_encryption_on() {
    assert_eq!(write_and_scan(true), (0, 0));
}

/// Proves the scan: the same writes without a key ring are found.
#[test]
fn sentinels_found_with_encryption_off() {
    let (in_files, in_dump) = write_and_scan(false);
    assert_eq!(in_files, 2000, "every sentinel in the data directory");
    assert_eq!(in_dump, 2000, "every sentinel in the dump");
}

/// An encrypted store on a fresh database, through a runtime role that
/// row-level security binds.
fn encrypted_app_store() -> PgStore {
    const ROLE: &str = "medsched_app_enc";
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL.get_or_init(|| {
        let owner_url = server().fresh_database("conformance_enc");
        let owner = PgStore::connect(&owner_url, 1).unwrap();
        owner.migrate().unwrap();
        admin(&owner_url)
            .batch_execute(&format!(
                "CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            ))
            .unwrap();
        owner.grant_runtime_role(ROLE).unwrap();
        owner_url.replace("user=postgres", &format!("user={ROLE}"))
    });
    PgStore::open(
        PgConfig::new(url)
            .max_connections(16)
            .keyring(ring("conf", &["conf", "older"])),
    )
    .unwrap()
}

/// The shared conformance suite with PHI encryption on.
mod conformance_encrypted {
    medsched_storage::conformance_tests!(super::encrypted_app_store);
}

/// A database written at schema version 2 (PHI in `text` columns) is
/// converted by the migration to version-0 plaintext values, still
/// readable, and a rotation then encrypts them.
#[test]
fn plaintext_database_upgrades_then_rotates() {
    let url = server().fresh_database("enc_upgrade");
    let mut su = admin(&url);
    su.batch_execute(
        "CREATE SCHEMA medsched;
         CREATE TABLE medsched.schema_version (
             version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .unwrap();
    su.batch_execute(include_str!("../migrations/0001_init.sql"))
        .unwrap();
    su.batch_execute(include_str!("../migrations/0002_row_level_security.sql"))
        .unwrap();
    su.batch_execute("INSERT INTO medsched.schema_version (version) VALUES (1), (2)")
        .unwrap();
    let a = appt("old1", 0, "old reason".into(), "old notes".into());
    let doc = serde_json::to_value(Appointment {
        reason: None,
        notes: None,
        ..a.clone()
    })
    .unwrap();
    let resources = vec!["room".to_owned()];
    su.execute(
        "INSERT INTO medsched.appointments (tenant_id, id, version, status, start_at, end_at,
             buffer_before_min, buffer_after_min, resources, doc, reason, notes)
         VALUES ('up', 'old1', 1, $1, $2, $3, 0, 0, $4, $5, 'old reason', 'old notes')",
        &[&a.status.code(), &a.start, &a.end, &resources, &doc],
    )
    .unwrap();

    let keys = ring("k1", &["k1"]);
    let store = open(&url, Some(keys));
    assert_eq!(store.migrate().unwrap(), medsched_postgres::SCHEMA_VERSION);
    let t = TenantId::from("up");
    let read = |store: &PgStore| store.appointment(&t, &"old1".into()).unwrap();
    // The record reads back whole from its columns (version 4 dropped the
    // JSON copy that versions 1 to 3 also kept).
    assert_eq!(read(&store).appointment, a);
    assert_eq!(
        read(&store).appointment.reason.as_ref().unwrap().0,
        "old reason"
    );
    let first: u8 = su
        .query_one(
            "SELECT get_byte(reason, 0) FROM medsched.appointments WHERE id = 'old1'",
            &[],
        )
        .unwrap()
        .get::<_, i32>(0) as u8;
    assert_eq!(first, 0, "plaintext version byte after the migration");
    let p = store.rotate_phi(10).unwrap();
    assert_eq!((p.rotated, p.remaining), (1, 0));
    let stored: Vec<u8> = su
        .query_one(
            "SELECT notes FROM medsched.appointments WHERE id = 'old1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored[0], 1);
    assert!(!String::from_utf8_lossy(&stored).contains("old notes"));
    assert_eq!(
        read(&store).appointment.notes.as_ref().unwrap().0,
        "old notes"
    );
}
