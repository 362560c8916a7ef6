//! A history store shared by many hosts: what the operator of a PostgreSQL store meets
//! (errors that name the server and the reason but never the password; passwords from
//! PGPASSWORD and the password file as libpq reads them; `db migrate` and `db check` with
//! their exit codes), 10,000 points in one transaction, and `--site` keeping two hosts'
//! disks apart in growth look-ups and reports. Tests that make sense on both stores run on
//! both (`stores.rs`).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::stores::{Kind, PASSWORD, Server, ServerCert, Store, USER, both_stores, server};
use crate::util::*;

both_stores!(
    db_migrate_and_check_tell_the_operator,
    ten_thousand_points_are_one_transaction,
    sites_keep_hosts_apart_in_growth_and_reports,
);

/// deltascope with a clean libpq environment (no PG* variables, HOME in `home`) plus `env`.
fn run_env(home: &Path, env: &[(&str, &OsStr)], args: &[&OsStr]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .env("DELTASCOPE_CACHE", cache_dir())
        .env("HOME", home);
    for k in [
        "PGPASSWORD",
        "PGPASSFILE",
        "PGUSER",
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "DELTASCOPE_DB",
        "DELTASCOPE_SITE",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run deltascope");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(PASSWORD), "the password was printed: {all}");
    assert!(!all.contains("panicked"), "{all}");
    out
}

/// `history --db DB`, as [`run_env`] runs it with no extra environment.
fn history_of(home: &Path, db: &str) -> Output {
    run_env(
        home,
        &[],
        &[OsStr::new("history"), OsStr::new("--db"), OsStr::new(db)],
    )
}

/// `db check` of `db` (with `--json` when `json`), as [`run_env`] runs it.
fn db_check(home: &Path, env: &[(&str, &OsStr)], db: &str, json: bool) -> Output {
    let mut args = vec![OsStr::new("db"), OsStr::new("check")];
    if json {
        args.push(OsStr::new("--json"));
    }
    args.extend([OsStr::new("--db"), OsStr::new(db)]);
    run_env(home, env, &args)
}

/// `db check --json` of `db`, with its output and its JSON (null when it printed none).
fn db_check_json(home: &Path, env: &[(&str, &OsStr)], db: &str) -> (Output, Value) {
    let o = db_check(home, env, db, true);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, v)
}

/// `history --db DB` is a usage error (exit 2) whose message holds every one of `says`.
fn usage_error(home: &Path, db: &str, says: &[&str]) {
    let o = history_of(home, db);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    for s in says {
        assert!(e.contains(s), "{s:?} not in: {e}");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A certificate authority named `name`, with a certificate of its own.
fn authority(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
        .expect("CA certificate")
}

/// A server of its own that accepts only TLS, with a certificate for `localhost` signed by
/// `ca`; with `client_certs`, its only way in is a client certificate `ca` signed.
fn tls_server(ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, client_certs: bool) -> Server {
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("server params")
        .signed_by(&key, ca)
        .expect("server certificate");
    Server::start_tls(&ServerCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        client_ca_pem: client_certs.then(|| ca.pem()),
    })
}

/// Records a scan of the demo chain into `db` at a fixed time, and asserts it succeeded.
fn record_demo(home: &Path, db: &str) {
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let o = run_env(
        home,
        &[],
        &[
            OsStr::new("scan"),
            demo.as_os_str(),
            OsStr::new("--record"),
            OsStr::new("--at"),
            OsStr::new("2026-11-02T06:00:00Z"),
            OsStr::new("--db"),
            OsStr::new(db),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

fn closed_port() -> u16 {
    // Bound then released: nothing listens there.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

#[test]
fn server_errors_name_the_server_and_the_reason_never_the_password() {
    let home = tempdir();
    let s = server();
    let db = s.create_db("errors");
    let history = |url: &str| history_of(home.path(), url);
    // Nothing listens on the port.
    let port = closed_port();
    let o = history(&format!(
        "postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{db}"
    ));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "postgresql://{USER}@127.0.0.1:{port}/{db}: cannot connect: connection refused"
        )),
        "{e}"
    );
    // The wrong password.
    let o = history(&s.url(&db).replace(PASSWORD, "not-the-password"));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&s.url_without_password(&db)) && e.contains("authentication failed"),
        "{e}"
    );
    assert!(!e.contains("not-the-password"), "{e}");
    // A database that does not exist.
    let o = history(&s.url("nosuchdb"));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&s.url_without_password("nosuchdb"))
            && e.contains("database \"nosuchdb\" does not exist"),
        "{e}"
    );
    // No password anywhere: the message says where one is looked for.
    let o = history(&s.url_without_password(&db));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("asks for a password") && e.contains(".pgpass") && e.contains("PGPASSWORD"),
        "{e}"
    );
    // A malformed URL is a usage error, quoted without its password.
    let o = history(&format!(
        "postgresql://{USER}:{PASSWORD}@127.0.0.1:notaport/{db}"
    ));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("not a PostgreSQL URL") && e.contains(":***@"),
        "{e}"
    );
    // The server's errors under `db check --json` too: exit 1, status failed, the reason.
    let o = db_check(
        home.path(),
        &[],
        &format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{db}"),
        true,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["reachable"], false);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{v}"
    );
}

#[test]
fn passwords_come_from_pgpassword_and_the_password_file() {
    let home = tempdir();
    let s = server();
    let db = s.create_db("passwords");
    let url = s.url_without_password(&db);
    let migrate = |env: &[(&str, &OsStr)]| {
        run_env(
            home.path(),
            env,
            &[
                OsStr::new("db"),
                OsStr::new("migrate"),
                OsStr::new("--db"),
                OsStr::new(&url),
            ],
        )
    };
    // PGPASSWORD.
    let o = migrate(&[("PGPASSWORD", OsStr::new(PASSWORD))]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A password file named by PGPASSFILE: a comment, a line for another database, then
    // ours with an escaped field; mode 0600.
    let file = home.path().join("pgpass");
    std::fs::write(
        &file,
        format!(
            "# deltascope's store\n127.0.0.1:{p}:otherdb:{USER}:wrong\n127.0.0.1:{p}:{db}:{USER}:{PASSWORD}\n",
            p = s.port
        ),
    )
    .expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = migrate(&[("PGPASSFILE", file.as_os_str())]);
    assert!(o.status.success(), "{}", stderr(&o));
    // ~/.pgpass, with wildcards.
    let dot = home.path().join(".pgpass");
    std::fs::write(&dot, format!("*:{}:*:{USER}:{PASSWORD}\n", s.port)).expect("write");
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = migrate(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A file others can read is ignored, as libpq ignores it, and the error says why.
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = migrate(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("asks for a password") && e.contains("group or world access"),
        "{e}"
    );
    // $DELTASCOPE_DB names the server for every command that takes --db.
    let o = run_env(
        home.path(),
        &[
            ("DELTASCOPE_DB", OsStr::new(&url)),
            ("PGPASSWORD", OsStr::new(PASSWORD)),
        ],
        &[OsStr::new("history")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("no points in {url}")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

fn check(db: &Store) -> (Option<i32>, Value) {
    let o = run([
        OsStr::new("db"),
        OsStr::new("check"),
        OsStr::new("--json"),
        OsStr::new("--db"),
        db.arg(),
    ]);
    (
        o.status.code(),
        serde_json::from_slice(&o.stdout).expect("db check JSON"),
    )
}

/// `db check` says whether the store is ready (exit 0) or what is wrong (exit 1), and never
/// changes it; `db migrate` creates or upgrades the schema, idempotently.
fn db_migrate_and_check_tell_the_operator(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "ops");
    // No store yet: check says so, and what migrate would do; nothing is created.
    let (code, v) = check(&db);
    assert_eq!(
        (code, v["status"].as_str()),
        (Some(1), Some("missing")),
        "{v}"
    );
    assert_eq!(v["exists"], false);
    assert_eq!(v["pending"][0]["version"], 1);
    assert_eq!(
        v["backend"],
        if kind == Kind::Sqlite {
            "sqlite"
        } else {
            "postgresql"
        }
    );
    let text = run(["db", "check", "--db", db.s()]);
    assert_eq!(text.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("would apply 1: scans"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    assert!(!db.exists());
    // migrate creates the schema; again, it has nothing to do.
    let out = ok(["db", "migrate", "--db", db.s()]);
    assert!(out.contains("applied migration 1"), "{out}");
    let out = ok(["db", "migrate", "--db", db.s()]);
    assert!(out.contains("up to date, nothing to do"), "{out}");
    let (code, v) = check(&db);
    assert_eq!((code, v["status"].as_str()), (Some(0), Some("ok")), "{v}");
    assert_eq!(
        (v["schema_version"].as_i64(), v["points"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(v["pending"].as_array().is_some_and(Vec::is_empty));
    if kind == Kind::Postgres {
        assert!(v["server_version"].as_str().is_some(), "{v}");
    }
    // Points and disks are counted.
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,a,1\n2026-10-12T08:00:00Z,a,2\n2026-10-12T08:00:00Z,b,3\n",
    )
    .expect("write");
    ok(["import", csv.to_str().expect("utf-8"), "--db", db.s()]);
    let (code, v) = check(&db);
    assert_eq!(code, Some(0));
    assert_eq!(
        (v["points"].as_u64(), v["disks"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(v["first_at"], "2026-10-05T08:00:00Z");
    assert_eq!(v["last_at"], "2026-10-12T08:00:00Z");
    let text = ok(["db", "check", "--db", db.s()]);
    assert!(
        text.contains("status:    ok") && text.contains("3 in 2 disk(s)"),
        "{text}"
    );
    // A newer deltascope's schema: check says so, readers and writers refuse it.
    let newer = Store::new(kind, d.path(), "newer");
    ok(["db", "migrate", "--db", newer.s()]);
    sql(
        &newer,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'later')",
    );
    let (code, v) = check(&newer);
    assert_eq!(
        (code, v["status"].as_str()),
        (Some(1), Some("newer")),
        "{v}"
    );
    for args in [
        vec!["history", "--db", newer.s()],
        vec!["db", "migrate", "--db", newer.s()],
        vec!["import", csv.to_str().expect("utf-8"), "--db", newer.s()],
    ] {
        let e = fails(1, &args);
        assert!(
            e.contains("newer than this deltascope knows"),
            "{args:?}: {e}"
        );
    }
    // A store that lacks a migration (its table of migrations is empty): behind, then
    // migrated.
    let behind = Store::new(kind, d.path(), "behind");
    match kind {
        Kind::Sqlite => std::fs::write(behind.arg(), b"").expect("empty file"),
        Kind::Postgres => sql(
            &behind,
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        ),
    }
    let (code, v) = check(&behind);
    assert_eq!(
        (code, v["status"].as_str()),
        (Some(1), Some("behind")),
        "{v}"
    );
    let out = ok(["db", "migrate", "--db", behind.s()]);
    assert!(out.contains("schema version 1 (was 0)"), "{out}");
    assert_eq!(check(&behind).0, Some(0));
    // A store that cannot be read: failed, with the reason.
    if kind == Kind::Sqlite {
        let bad = Store::new(kind, d.path(), "bad");
        std::fs::write(bad.arg(), vec![b'x'; 4096]).expect("write");
        let (code, v) = check(&bad);
        assert_eq!(
            (code, v["status"].as_str()),
            (Some(1), Some("failed")),
            "{v}"
        );
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(bad.s())),
            "{v}"
        );
    }
}

/// Runs one statement on the store with the backend's own client (sqlite3 is not needed:
/// the test uses rusqlite directly).
fn sql(db: &Store, statement: &str) {
    match db.dbname() {
        None => {
            let c = rusqlite::Connection::open(db.arg()).expect("open");
            c.execute_batch(statement).expect("statement");
        }
        Some(name) => server()
            .client(name)
            .batch_execute(statement)
            .expect("statement"),
    }
}

/// 10,000 disks recorded at once (an import: the same `record_all` a datastore scan uses)
/// are one write transaction on each store, and all of them are there afterwards.
fn ten_thousand_points_are_one_transaction(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "big");
    ok(["db", "migrate", "--db", db.s()]);
    let mut csv = String::from("timestamp,disk,bytes\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "2026-10-05T08:00:00Z,/vmfs/volumes/ds{}/vdi-{i:05}/vdi-{i:05}-000001.vmdk,{}\n",
            i % 50,
            (i + 1) * 4096
        ));
    }
    let f = d.path().join("big.csv");
    std::fs::write(&f, csv).expect("write");
    let before = db.writes();
    let out = run(["import", f.to_str().expect("utf-8"), "--db", db.s()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("10000 point(s) recorded, 0 already there, 10000 disk(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.writes(), before + 1, "transactions for 10,000 points");
    let (_, v) = check(&db);
    assert_eq!(
        (v["points"].as_u64(), v["disks"].as_u64()),
        (Some(10_000), Some(10_000))
    );
    // Again: every point is a duplicate, and nothing is written.
    let out = run(["import", f.to_str().expect("utf-8"), "--db", db.s()]);
    assert!(
        stderr(&out).contains("0 point(s) recorded, 10000 already there"),
        "{}",
        stderr(&out)
    );
    let h = json(&[
        OsStr::new("history"),
        OsStr::new("--json"),
        OsStr::new("--db"),
        db.arg(),
    ]);
    let disks = h["disks"].as_array().expect("disks");
    assert_eq!(disks.len(), 10_000);
    // Listed in byte order on both stores, whatever the server's locale.
    let names: Vec<&str> = disks
        .iter()
        .map(|d| d["disk"].as_str().expect("name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

/// A datastore scanned by host A under `--site a`: its growth is found by A's later runs
/// (`lun`, `scan DIR`, `report`) and never by B's, whose identical paths are other disks.
fn sites_keep_hosts_apart_in_growth_and_reports(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "sites");
    let demo = root().join("testdata/demo");
    let top = std::fs::canonicalize(demo.join("win10-clone-000002.vmdk")).expect("canonical");
    // Host A's day 0: the delta was empty (an import under the site), then a scan on day 2.
    let csv = d.path().join("day0.csv");
    std::fs::write(
        &csv,
        format!(
            "timestamp,disk,bytes\n2026-11-01T00:00:00Z,{},0\n",
            top.display()
        ),
    )
    .expect("write");
    ok([
        "import",
        csv.to_str().expect("utf-8"),
        "--db",
        db.s(),
        "--site",
        "a",
    ]);
    let o = Command::new(bin())
        .args([
            "scan",
            "--record",
            "--at",
            "2026-11-03T00:00:00Z",
            "--db",
            db.s(),
        ])
        .arg(&demo)
        .env("DELTASCOPE_CACHE", cache_dir())
        .env("DELTASCOPE_SITE", "a")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    let name = format!("a:{}", top.display());
    let h = json(&[
        OsStr::new("history"),
        OsStr::new("--json"),
        OsStr::new("--db"),
        db.arg(),
    ]);
    assert_eq!(h["disks"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h["disks"][0]["disk"], name.as_str());
    assert_eq!(h["disks"][0]["points"].as_array().map(Vec::len), Some(2));
    // Host A's model reads the growth; host B's (and a run without a site) does not.
    let lun = |site: Option<&str>| {
        let mut args = vec![
            "lun",
            "--json",
            "--db",
            db.s(),
            demo.to_str().expect("utf-8"),
        ];
        if let Some(s) = site {
            args.extend(["--site", s]);
        }
        run(&args)
    };
    let growth = |site: Option<&str>| {
        let o = lun(site);
        assert!(o.status.success(), "{site:?}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let inputs = &v["luns"][0]["inputs"];
        (
            inputs["growth_per_vm_bytes"].as_u64(),
            inputs["window_seconds"].as_f64(),
        )
    };
    let size = h["disks"][0]["points"][1]["bytes"].as_u64();
    assert!(size.is_some_and(|b| b > 0));
    assert_eq!(growth(Some("a")), (size, Some(2.0 * 86400.0)));
    assert_eq!(growth(Some("b")), (None, None));
    assert_eq!(growth(None), (None, None));
    // The report of the disk, under site a, has its history; under site b, a note.
    let page = d.path().join("a.html");
    let top_s = top.to_str().expect("utf-8");
    let page_s = page.to_str().expect("utf-8");
    ok(["report", top_s, "--db", db.s(), "--site", "a", "-o", page_s]);
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        html.contains("2 point(s) recorded for"),
        "no history section"
    );
    ok(["report", top_s, "--db", db.s(), "--site", "b", "-o", page_s]);
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(html.contains("has no points for b:"), "no note for site b");
}

/// The same operations on a SQLite file and on a PostgreSQL database give the same
/// history, byte for byte: points imported out of order (back-filled, duplicated, shrinking
/// into new segments) in one file, scans recorded before and after them, a deleted point and
/// a renamed disk; then `history --json`, `history --csv` and `forecast --json` of each.
#[test]
fn both_stores_give_the_same_history() {
    let d = tempdir();
    let mut rows = Vec::new();
    // Five disks, twelve weeks each, sizes that grow and twice fall (refreshes), written in
    // a scrambled order with every tenth row repeated.
    for disk in 0..5u64 {
        for week in 0..12u64 {
            let bytes = match week {
                0..=4 => (week + 1) * (disk + 1) * 1_000_000,
                5..=8 => (week - 4) * 700_000,
                _ => (week - 8) * 900_000 + disk,
            };
            rows.push(format!(
                "2026-{:02}-{:02}T06:00:00Z,vdi-{disk},{bytes}",
                8 + (week * 7 + 3) / 30,
                1 + (week * 7 + 3) % 30
            ));
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (i * 37) % rows.len());
    let mut csv = String::from("timestamp,disk,bytes\n");
    for (n, &i) in order.iter().enumerate() {
        csv.push_str(&rows[i]);
        csv.push('\n');
        if n % 10 == 0 {
            csv.push_str(&rows[i]);
            csv.push('\n');
        }
    }
    let f = d.path().join("scrambled.csv");
    std::fs::write(&f, csv).expect("write");
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    let outputs: Vec<Vec<String>> = [Kind::Sqlite, Kind::Postgres]
        .into_iter()
        .map(|kind| {
            let db = Store::new(kind, d.path(), "same");
            let s = db.s();
            let top = top.to_str().expect("utf-8");
            ok([
                "scan",
                "--record",
                "--disk",
                "vdi-2",
                "--at",
                "2026-08-20T06:00:00Z",
                "--db",
                s,
                top,
            ]);
            ok(["import", f.to_str().expect("utf-8"), "--db", s]);
            ok([
                "scan",
                "--record",
                "--disk",
                "vdi-3",
                "--at",
                "2026-07-01T06:00:00Z",
                "--db",
                s,
                top,
            ]);
            ok([
                "history",
                "--db",
                s,
                "--delete",
                "--disk",
                "vdi-1",
                "--at",
                "2026-09-09T06:00:00Z",
            ]);
            ok(["history", "--db", s, "--rename", "vdi-4", "vdi-0-b"]);
            vec![
                ok(["history", "--json", "--db", s]),
                ok(["history", "--csv", "--db", s]),
                ok(["forecast", "--json", "--weeks", "4", "--db", s]),
                ok(["history", "--db", s, "--disk", "vdi-2"]),
            ]
        })
        .collect();
    assert!(
        outputs[0][0].contains("\"segment\": 2"),
        "{}",
        outputs[0][0]
    );
    for (a, b) in outputs[0].iter().zip(&outputs[1]) {
        assert_eq!(a, b, "SQLite and PostgreSQL differ");
    }
}

/// A writer that found no schema, then waited for the write lock while another process
/// created it, must see the new tables once it holds the lock, not migrate a second time.
/// (PostgreSQL's catalog cache is refreshed inside a transaction only when a table is
/// locked: reading the schema with `to_regclass` failed here with a duplicate key in
/// `schema_migrations`, as it did once in eight processes racing on a fresh database.)
#[test]
fn a_writer_that_waited_for_the_lock_sees_the_schema_made_meanwhile() {
    let d = tempdir();
    let db = Store::new(Kind::Postgres, d.path(), "waited");
    let csv = d.path().join("p.csv");
    std::fs::write(&csv, "timestamp,disk,bytes\n2026-10-05T08:00:00Z,a,1\n").expect("write");
    let mut holder = server().client(db.dbname().expect("database"));
    let mut tx = holder.transaction().expect("begin");
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&deltascope::history::WRITE_LOCK],
    )
    .expect("lock");
    let child = Command::new(bin())
        .args(["import", csv.to_str().expect("utf-8"), "--db", db.s()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until deltascope waits for the lock (it has looked for the schema by then).
    let mut watcher = server().client(db.dbname().expect("database"));
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .expect("pg_locks")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "deltascope never waited for the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Meanwhile "another deltascope" creates the schema and commits.
    tx.batch_execute(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .expect("schema_migrations");
    tx.batch_execute(deltascope::history::MIGRATIONS[0].postgres)
        .expect("migration 1");
    tx.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (1, 'another writer')",
        &[],
    )
    .expect("version");
    tx.commit().expect("commit");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, v) = check(&db);
    assert_eq!(
        (v["status"].as_str(), v["points"].as_u64()),
        (Some("ok"), Some(1)),
        "{v}"
    );
}

/// TLS as libpq users set it, against a real server that accepts only TLS (`hostssl`):
/// a plain connection is refused there, so every success below went over TLS, which the
/// server itself confirms (`db check`'s `tls.protocol`, from `pg_stat_ssl`). The server's
/// certificate names `localhost` only, and is signed by a test authority made here.
#[test]
fn a_store_over_tls_checks_the_certificate_as_libpq_does() {
    let home = tempdir();
    let ca = authority("deltascope test CA");
    let stranger = authority("someone else's CA");
    let s = tls_server(&ca, false);
    let roots = home.path().join("ca.pem");
    std::fs::write(&roots, ca.pem()).expect("write roots");
    let wrong = home.path().join("stranger.pem");
    std::fs::write(&wrong, stranger.pem()).expect("write roots");
    let url = |host: &str, query: &str| {
        format!(
            "postgresql://{USER}:{PASSWORD}@{host}:{}/postgres{query}",
            s.port
        )
    };
    let check = |db: &str, env: &[(&str, &OsStr)]| db_check_json(home.path(), env, db);

    // Plain text is refused by the server: the reason says so.
    let (o, v) = check(&url("localhost", "?sslmode=disable"), &[]);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("no encryption"),
        "{v}"
    );
    // The default (prefer) encrypts without roots; the certificate is not checked.
    let (o, v) = check(&url("localhost", ""), &[]);
    assert_eq!(o.status.code(), Some(1), "no store yet: {v}");
    assert_eq!(v["status"], "missing", "{v}");
    assert!(
        v["tls"]["protocol"]
            .as_str()
            .is_some_and(|p| p.starts_with("TLSv1.")),
        "{v}"
    );
    assert_eq!(v["tls"]["sslmode"], "prefer");
    assert!(
        v["tls"]["certificate"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{v}"
    );

    // verify-full with the right authority: a datastore's point goes in and comes back.
    let full = url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={}", roots.display()),
    );
    record_demo(home.path(), &full);
    let (o, v) = check(&full, &[]);
    assert!(o.status.success(), "{v}");
    assert_eq!(
        (v["points"].as_u64(), v["tls"]["sslmode"].as_str()),
        (Some(1), Some("verify-full"))
    );
    assert!(v["tls"]["protocol"].as_str().is_some(), "{v}");
    assert!(
        v["tls"]["certificate"]
            .as_str()
            .unwrap()
            .contains("chain and host name checked against sslrootcert="),
        "{v}"
    );
    let text = db_check(home.path(), &[], &full, false);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("tls:       TLSv1.") && t.contains("sslmode=verify-full"),
        "{t}"
    );

    // By address, the name check fails (the certificate names localhost only); verify-ca
    // checks the chain alone and connects.
    let by_ip = |mode: &str| {
        url(
            "127.0.0.1",
            &format!("?sslmode={mode}&sslrootcert={}", roots.display()),
        )
    };
    let (o, v) = check(&by_ip("verify-full"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("certificate does not name 127.0.0.1"),
        "{v}"
    );
    let (o, v) = check(&by_ip("verify-ca"), &[]);
    assert!(o.status.success(), "{v}");

    // Another authority's root: refused, whatever the mode that checks.
    for mode in ["verify-full", "verify-ca", "require"] {
        let (o, v) = check(
            &url(
                "localhost",
                &format!("?sslmode={mode}&sslrootcert={}", wrong.display()),
            ),
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{mode}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or("")
                .contains("not signed by a trusted root"),
            "{mode}: {v}"
        );
    }

    // The environment, as libpq reads it, when the URL says nothing.
    let (o, v) = check(
        &url("localhost", ""),
        &[
            ("PGSSLMODE", OsStr::new("verify-full")),
            ("PGSSLROOTCERT", roots.as_os_str()),
        ],
    );
    assert!(o.status.success(), "{v}");
    assert_eq!(v["tls"]["sslmode"], "verify-full");
    // A verifying mode without roots is a usage error that says where roots go.
    usage_error(
        home.path(),
        &url("localhost", "?sslmode=verify-full"),
        &["sslrootcert=FILE"],
    );
    // Encrypted keys are refused by name rather than ignored.
    usage_error(
        home.path(),
        &url("localhost", "?sslpassword=secret"),
        &["sslpassword: encrypted private keys are not supported"],
    );
    s.stop();
}

/// A client certificate, as libpq presents it, against a real server whose only way in is
/// `cert` authentication (no password is known to the client): named in the URL, by
/// `PGSSLCERT`/`PGSSLKEY`, or found at `~/.postgresql/postgresql.crt` and `.key`. Without
/// one, with one from another authority, or with a key others may read, there is no
/// connection, and the message says why.
#[test]
fn a_client_certificate_authenticates_as_libpq_presents_it() {
    let home = tempdir();
    let ca = authority("deltascope test CA");
    let stranger = authority("someone else's CA");
    let s = tls_server(&ca, true);
    // A client certificate for the user, issued by `issuer`, written to `dir` (key 0600).
    let client =
        |issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, dir: &Path, stem: &str| {
            let key = rcgen::KeyPair::generate().expect("client key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, USER);
            let cert = params.signed_by(&key, issuer).expect("client certificate");
            std::fs::create_dir_all(dir).expect("mkdir");
            let (c, k) = (
                dir.join(format!("{stem}.crt")),
                dir.join(format!("{stem}.key")),
            );
            std::fs::write(&c, cert.pem()).expect("write certificate");
            std::fs::write(&k, key.serialize_pem()).expect("write key");
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            (c, k)
        };
    let roots = home.path().join("ca.pem");
    std::fs::write(&roots, ca.pem()).expect("write roots");
    let (good_cert, good_key) = client(&ca, home.path(), "mine");
    let (bad_cert, bad_key) = client(&stranger, home.path(), "stranger");
    // No password anywhere: the URL has none and the home has no ~/.pgpass.
    let url = |extra: &str| {
        format!(
            "postgresql://{USER}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}{extra}",
            s.port,
            roots.display()
        )
    };
    let with =
        |c: &Path, k: &Path| url(&format!("&sslcert={}&sslkey={}", c.display(), k.display()));
    let check = |db: &str, env: &[(&str, &OsStr)]| db_check_json(home.path(), env, db);

    // Without a certificate the server lets nobody in.
    let (o, v) = check(&url(""), &[]);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert!(
        v["tls"].is_null() || v["tls"]["client_certificate"].is_null(),
        "{v}"
    );
    let why = v["error"].as_str().unwrap_or("");
    assert!(
        why.contains("requires a valid client certificate") && why.contains("sslcert=FILE"),
        "{v}"
    );

    // Named in the URL: a datastore's point goes in over it and comes back.
    let mine = with(&good_cert, &good_key);
    record_demo(home.path(), &mine);
    let (o, v) = check(&mine, &[]);
    assert!(o.status.success(), "{v}");
    assert_eq!(v["points"].as_u64(), Some(1), "{v}");
    assert_eq!(
        v["tls"]["client_certificate"].as_str(),
        good_cert.to_str(),
        "{v}"
    );
    let text = db_check(home.path(), &[], &mine, false);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains(&format!("client:    certificate {}", good_cert.display())),
        "{t}"
    );

    // From the environment, as libpq reads it.
    let (o, v) = check(
        &url(""),
        &[
            ("PGSSLCERT", good_cert.as_os_str()),
            ("PGSSLKEY", good_key.as_os_str()),
        ],
    );
    assert!(o.status.success(), "{v}");
    assert_eq!(v["points"].as_u64(), Some(1), "{v}");

    // From ~/.postgresql when nothing names one.
    let dot = home.path().join(".postgresql");
    let (c, _) = client(&ca, &dot, "postgresql");
    let (o, v) = check(&url(""), &[]);
    assert!(o.status.success(), "{v}");
    assert_eq!(v["tls"]["client_certificate"].as_str(), c.to_str(), "{v}");
    std::fs::remove_dir_all(&dot).expect("rm ~/.postgresql");

    // Another authority's certificate: the server refuses it, and the message names it.
    let (o, v) = check(&with(&bad_cert, &bad_key), &[]);
    assert_eq!(o.status.code(), Some(1), "{v}");
    let why = v["error"].as_str().unwrap_or("");
    assert!(
        why.contains("refused the client certificate") && why.contains("stranger.crt"),
        "{v}"
    );

    // A key its group or others may read is refused before connecting, as libpq does; so
    // are a certificate without its key and a key without a certificate.
    std::fs::set_permissions(&good_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    usage_error(
        home.path(),
        &mine,
        &["group or others may access it (mode 0644)", "mine.key"],
    );
    std::fs::set_permissions(&good_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let missing = home.path().join("absent.key");
    usage_error(home.path(), &with(&good_cert, &missing), &["absent.key"]);
    usage_error(
        home.path(),
        &url(&format!("&sslkey={}", good_key.display())),
        &["sslkey is set but no client certificate is"],
    );
    s.stop();
}

/// A server without TLS: `require` and stronger fail with the reason, `prefer` connects in
/// plain text and `db check` says it is not encrypted.
#[test]
fn a_server_without_tls_is_refused_where_tls_is_required() {
    let home = tempdir();
    let s = server();
    let db = s.create_db("plain");
    let o = db_check(
        home.path(),
        &[],
        &format!("{}?sslmode=require", s.url(&db)),
        false,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the server does not offer TLS, and sslmode=require requires it"),
        "{}",
        stderr(&o)
    );
    let o = db_check(home.path(), &[], &s.url(&db), true);
    let v: Value = serde_json::from_slice(&o.stdout).expect("db check JSON");
    assert_eq!(v["tls"]["sslmode"], "prefer", "{v}");
    assert!(v["tls"]["protocol"].is_null(), "{v}");
}
