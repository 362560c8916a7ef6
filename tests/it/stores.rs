//! The two history stores the tests run against: a SQLite file, and a database on a real
//! PostgreSQL server that this test process starts itself (no mocks). `both_stores!` turns
//! a test written once, `fn name(kind: Kind)`, into `name::sqlite` and `name::postgres`, so
//! the same assertions run on each store.
//!
//! The server: the Debian `postgresql` binaries (`initdb`, `pg_ctl`, found on PATH or in
//! /usr/lib/postgresql/*/bin; missing ones fail the test with an install hint), a cluster
//! initialised in a temporary folder, run by an unprivileged user when the tests run as
//! root (`nobody`: PostgreSQL refuses root), listening on 127.0.0.1 at a free port and on a
//! Unix socket in that folder, password authentication (SCRAM) for every connection. One
//! server per test process, started on first use. It is stopped, and its folder removed, by
//! a watchdog process that waits for this test process to end however it ends (a panic, a
//! failed assertion, SIGKILL), and by [`Server`]'s `Drop` where one is owned.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser the tests connect as.
pub const USER: &str = "deltascope";
/// Its password: a string no output of deltascope may ever contain.
pub const PASSWORD: &str = "pw-Kq7zr-never-printed";

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file.
    Sqlite,
    /// A database on the test PostgreSQL server.
    Postgres,
}

/// Writes `name::sqlite` and `name::postgres` tests for each `fn name(kind: Kind)`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(crate::stores::Kind::Sqlite)
                }
                #[test]
                fn postgres() {
                    super::$name(crate::stores::Kind::Postgres)
                }
            }
        )*
    };
}
pub(crate) use both_stores;

/// A store for one test: a file not created yet, or a new empty database.
#[derive(Debug, Clone)]
pub struct Store {
    /// Which kind.
    pub kind: Kind,
    /// The `--db` value (a path, or a URL with the password).
    arg: OsString,
    /// The database, on PostgreSQL.
    dbname: Option<String>,
}

impl Store {
    /// A fresh store named `name`: `dir/name.sqlite`, or a new database.
    pub fn new(kind: Kind, dir: &Path, name: &str) -> Store {
        match kind {
            Kind::Sqlite => Store {
                kind,
                arg: dir.join(format!("{name}.sqlite")).into_os_string(),
                dbname: None,
            },
            Kind::Postgres => {
                let dbname = server().create_db(name);
                Store {
                    kind,
                    arg: server().url(&dbname).into(),
                    dbname: Some(dbname),
                }
            }
        }
    }

    /// The `--db` value.
    pub fn arg(&self) -> &OsStr {
        &self.arg
    }

    /// The `--db` value as text.
    pub fn s(&self) -> &str {
        self.arg.to_str().expect("utf-8")
    }

    /// How deltascope names the store in messages: the path, or the URL without password.
    pub fn shown(&self) -> String {
        match &self.dbname {
            None => self.s().to_string(),
            Some(d) => format!("postgresql://{USER}@127.0.0.1:{}/{d}", server().port),
        }
    }

    /// Whether the store exists: the file, or any table in the database.
    pub fn exists(&self) -> bool {
        match &self.dbname {
            None => Path::new(&self.arg).exists(),
            Some(d) => {
                let mut c = server().client(d);
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                        &[],
                    )
                    .expect("count tables")
                    .get(0);
                n > 0
            }
        }
    }

    /// Write transactions that changed points so far: SQLite's file change counter (one more
    /// per transaction committed), or the distinct transaction ids (`xmin`) of the rows.
    pub fn writes(&self) -> u64 {
        match &self.dbname {
            None => {
                let b = std::fs::read(&self.arg).expect("read store");
                // The SQLite file format, section 1.3.8: header bytes 24..28.
                u32::from_be_bytes(b[24..28].try_into().expect("4 bytes")).into()
            }
            Some(d) => {
                let mut c = server().client(d);
                let n: i64 = c
                    .query_one("SELECT count(DISTINCT xmin::text) FROM scans", &[])
                    .expect("xmin")
                    .get(0);
                n as u64
            }
        }
    }

    /// The database name (PostgreSQL).
    pub fn dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }
}

/// The test PostgreSQL server.
#[derive(Debug)]
pub struct Server {
    /// Its folder: data, socket, log.
    pub dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    /// The user and group it runs as, when the tests run as root.
    owner: Option<(u32, u32)>,
}

/// The server of this test process, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

/// Where the PostgreSQL server binaries are; fails with an install hint when they are not.
pub fn pg_bin() -> PathBuf {
    let on_path = Command::new("sh")
        .arg("-c")
        .arg("command -v pg_ctl")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            std::fs::canonicalize(p)
                .ok()?
                .parent()
                .map(Path::to_path_buf)
        });
    let mut found: Vec<PathBuf> = on_path.into_iter().collect();
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        found.extend(versions.into_iter().rev());
    }
    found
        .into_iter()
        .find(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .unwrap_or_else(|| {
            panic!(
                "initdb and pg_ctl are required by the PostgreSQL store tests and were not found (on PATH or in /usr/lib/postgresql/*/bin): install postgresql (apt-get install postgresql)"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The certificate a TLS server presents, and its key (PEM).
#[derive(Debug)]
pub struct ServerCert {
    /// The certificate chain, server first.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
    /// When set, the authority whose client certificates the server accepts, and the only
    /// way in: `cert` authentication (the certificate's common name is the user name).
    pub client_ca_pem: Option<String>,
}

impl Server {
    fn start() -> Server {
        Server::start_with(None)
    }

    /// A server of its own that accepts TCP connections only over TLS (`hostssl` in
    /// pg_hba.conf: a plain connection is refused), presenting `cert`. Stopped when dropped.
    pub fn start_tls(cert: &ServerCert) -> Server {
        Server::start_with(Some(cert))
    }

    fn start_with(tls: Option<&ServerCert>) -> Server {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("deltascope-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // PostgreSQL refuses to run as root: then the cluster belongs to `nobody`.
        let root = sh_out("id", &["-u"]).trim() == "0";
        let owner =
            root.then(|| {
                let id =
                    |flag: &str| -> u32 {
                        sh_out("id", &[flag, "nobody"]).trim().parse().unwrap_or_else(|_| {
                    panic!("the tests run as root and need the user nobody to run PostgreSQL")
                })
                    };
                (id("-u"), id("-g"))
            });
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
        }
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("pwfile");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
        }
        let data = dir.join("data");
        let out = Server::as_owner(owner, &bin.join("initdb"), &dir)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut options = String::new();
        if let Some(cert) = tls {
            // The server refuses a key that others can read, and one it does not own.
            let mut files = vec![
                ("server.crt", &cert.cert_pem),
                ("server.key", &cert.key_pem),
            ];
            if let Some(ca) = &cert.client_ca_pem {
                files.push(("client-ca.crt", ca));
            }
            for (name, pem) in files {
                let path = data.join(name);
                std::fs::write(&path, pem).expect("write the server's certificate");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("chmod");
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
                }
            }
            let method = if cert.client_ca_pem.is_some() {
                options.push_str(" -c ssl_ca_file=client-ca.crt");
                "cert"
            } else {
                "scram-sha-256"
            };
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("local all all scram-sha-256\nhostssl all all 127.0.0.1/32 {method}\n"),
            )
            .expect("write pg_hba.conf");
            options.push_str(" -c ssl=on");
        }
        // A port another process takes between our probe and the server's bind: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let server = Server {
                dir: dir.clone(),
                port,
                bin: bin.clone(),
                owner,
            };
            let out = Server::as_owner(owner, &bin.join("pg_ctl"), &dir)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=32MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off{options}",
                    dir.display()
                ))
                .arg("start")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run pg_ctl");
            if out.status.success() {
                server.watch();
                return server;
            }
            last = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
        }
        panic!("the test PostgreSQL server did not start:\n{last}");
    }

    /// `program` run as the cluster's owner, in `dir`.
    fn as_owner(owner: Option<(u32, u32)>, program: &Path, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir).env("HOME", dir).env("LC_ALL", "C");
        if let Some((uid, gid)) = owner {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// A watchdog: once this test process has ended, stop the server (fast shutdown) and
    /// remove its folder. It outlives this process on purpose, so it is never waited for.
    #[expect(
        clippy::zombie_processes,
        reason = "the watchdog must outlive the tests"
    )]
    fn watch(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             pid=$(head -1 '{dir}/data/postmaster.pid' 2>/dev/null) && kill -INT \"$pid\" 2>/dev/null; \
             for i in $(seq 1 60); do kill -0 \"$pid\" 2>/dev/null || break; sleep 1; done; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the server's watchdog");
    }

    /// Stops the server now (fast shutdown).
    pub fn stop(&self) {
        let _ = Server::as_owner(self.owner, &self.bin.join("pg_ctl"), &self.dir)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The URL of database `db`, with the password.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The URL of database `db`, without a password.
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A client connected to database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test server, database {db}: {e}"))
    }

    /// Creates a new empty database and returns its name (`name` made unique).
    pub fn create_db(&self, name: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let db = format!("t{}_{clean}", N.fetch_add(1, Ordering::Relaxed));
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .expect("create database");
        db
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sh_out(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
