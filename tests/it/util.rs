//! Shared helpers: running the binary, generating test chains once, and calling qemu.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The deltascope binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_deltascope"))
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder that lives as long as this test process: statics are never dropped,
/// so its name carries the process id and the first call removes the folders of test
/// processes that have ended (a killed or finished run would otherwise leave gigabytes of
/// generated chains in the temp folder).
pub fn process_dir(what: &str) -> PathBuf {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("deltascope-it-pid") else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or("");
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    tempfile::Builder::new()
        .prefix(&format!("deltascope-it-pid{}-{what}-", std::process::id()))
        .tempdir()
        .expect("temp dir")
        .keep()
}

/// The layer cache every run of this test process shares (never the user's ~/.cache).
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| process_dir("cache"))
}

/// A history store that never exists: what `DELTASCOPE_DB` names for every run, so that no
/// test reads (or, by a slip, writes) the user's default store; a test that wants a store
/// names it with `--db`.
pub fn no_history() -> PathBuf {
    cache_dir().join("no-history.sqlite")
}

/// Runs deltascope with `args`.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(bin())
        .args(args)
        .env("DELTASCOPE_CACHE", cache_dir())
        .env("DELTASCOPE_DB", no_history())
        .output()
        .expect("run deltascope")
}

/// Runs deltascope, asserts exit 0, returns stdout.
pub fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "deltascope {:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        args,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs deltascope, asserts exit `code`, returns stderr.
pub fn fails<I, S>(code: i32, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "deltascope {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "panic on {args:?}:\n{stderr}");
    stderr
}

/// Fails the test with an install hint when a tool is missing: a skipped test never passes.
pub fn require(tool: &str) {
    let pkg = match tool {
        "chromium" => "chromium",
        "mkntfs" | "ntfscp" | "ntfswipe" => "ntfs-3g",
        "mkfs.ext4" | "debugfs" => "e2fsprogs",
        "losetup" | "prlimit" | "mount" | "setpriv" => "util-linux",
        "timeout" | "mkfifo" => "coreutils",
        _ => "qemu-utils",
    };
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by this test and was not found: install {pkg} (apt-get install {pkg})"
    );
}

/// Runs a command, asserting success; returns stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("deltascope-it-")
        .tempdir()
        .expect("temp dir")
}

fn generated(script: &str) -> PathBuf {
    require("qemu-img");
    require("qemu-io");
    let dir = process_dir(script);
    sh(Command::new("bash")
        .arg(root().join("testdata").join(script))
        .arg(&dir));
    dir
}

/// The chains built by `testdata/make-chains.sh`, built once per test run.
pub fn chains_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("make-chains.sh"))
}

/// The ESX-format chains built by `testdata/make-esx-chains.sh`, built once per test run.
pub fn esx_chains_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("make-esx-chains.sh"))
}

/// Every chain under `dir`: (name, layer paths base first), from each `chain.txt`.
pub fn chains_in(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("chains dir")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let list = e.path().join("chain.txt");
        if let Ok(text) = std::fs::read_to_string(&list) {
            let layers = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| e.path().join(l))
                .collect();
            out.push((e.file_name().to_string_lossy().into_owned(), layers));
        }
    }
    assert!(!out.is_empty(), "no chains found in {}", dir.display());
    out
}

/// `qemu-img map --output=json` of one layer alone (its backing cut off).
pub fn qemu_map_layer(path: &Path) -> Vec<Value> {
    let spec = format!(
        "json:{{\"driver\":\"vmdk\",\"file\":{{\"driver\":\"file\",\"filename\":{}}},\"backing\":null}}",
        serde_json::to_string(&path.to_string_lossy()).expect("path as JSON")
    );
    qemu_map(OsStr::new(&spec))
}

/// `qemu-img map --output=json` of `target` (a file or a `json:` spec). qemu-img before 8.0
/// (Debian 12's 7.2) does not report `compressed` per range; there the field is taken from
/// the same qemu's `qemu-img info` instead (a range is compressed when it holds data and its
/// image's extents are compressed, which is how streamOptimized images are), so the oracle
/// stays qemu's on every version.
pub fn qemu_map(target: &OsStr) -> Vec<Value> {
    let out = sh(Command::new("qemu-img")
        .args(["map", "--output=json"])
        .arg(target));
    let mut map: Vec<Value> = serde_json::from_str(&out).expect("qemu-img map JSON");
    if map.iter().any(|e| e.get("compressed").is_none()) {
        let info: Value = serde_json::from_str(&sh(Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(target)))
        .expect("qemu-img info JSON");
        let extents = info["format-specific"]["data"]["extents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let compressed = extents.iter().any(|e| e["compressed"] == Value::Bool(true));
        for e in &mut map {
            if let Some(o) = e.as_object_mut()
                && !o.contains_key("compressed")
            {
                let data = o.get("data") == Some(&Value::Bool(true));
                o.insert("compressed".into(), Value::Bool(data && compressed));
            }
        }
    }
    map
}

/// `qemu-img info --output=json`.
pub fn qemu_info(path: &Path) -> Value {
    let out = sh(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path));
    serde_json::from_str(&out).expect("qemu-img info JSON")
}

/// The guest view of the chain whose top is `path`, as a raw file in `dir`.
pub fn convert_raw(path: &Path, dir: &Path) -> PathBuf {
    let name = path
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    let out = dir.join(format!("{name}.raw"));
    sh(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(path)
        .arg(&out));
    out
}

/// deltascope's JSON output for `args`.
pub fn json(args: &[&OsStr]) -> Value {
    serde_json::from_str(&ok(args)).expect("deltascope JSON")
}

/// sha256-free fingerprint of a file tree for read-only checks: size, mtime and contents.
pub fn snapshot(paths: &[PathBuf]) -> BTreeMap<PathBuf, (u64, std::time::SystemTime, Vec<u8>)> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).expect("stat");
            (
                p.clone(),
                (
                    m.len(),
                    m.modified().expect("mtime"),
                    std::fs::read(p).expect("read"),
                ),
            )
        })
        .collect()
}

/// A loop device attached to a file, detached on drop (panics unwind through it).
pub struct Loop(pub PathBuf);

impl Loop {
    pub fn attach(file: &Path) -> Loop {
        require("losetup");
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .expect("run losetup");
        assert!(
            out.status.success(),
            "this test needs a loop device (run as root with loop devices available: \
             `losetup -f --show FILE` must work): losetup said {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Loop(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// A file system mounted for a test, unmounted on drop (also when an assertion fails).
pub struct Mount(pub PathBuf);

impl Mount {
    /// Mounts `source` (a device, or `tmpfs`) at `dir` with `mount ARGS`.
    pub fn new(args: &[&str], source: &Path, dir: &Path) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(args)
            .arg(source)
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a file system (run as root): mount said {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Mount(dir.to_path_buf())
    }

    /// Unmounts now.
    pub fn unmount(self) {}
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A `scan --json` document without its `scanned_at` line: two runs of one scan differ only
/// there, by the clock.
pub fn untimed(json: &str) -> String {
    json.lines()
        .filter(|l| !l.trim_start().starts_with("\"scanned_at\":"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decompresses the gzip file `gz` into `to`.
pub fn gunzip(gz: &Path, to: &Path) {
    use std::io::Read;
    let f = std::fs::File::open(gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut data)
        .unwrap_or_else(|e| panic!("gunzip {}: {e}", gz.display()));
    std::fs::write(to, data).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
}

/// Decompresses the committed NTFS chain `testdata/ntfs/CHAIN` (built by
/// `testdata/make-ntfs.sh`) into `dir`, created if need be; returns its delta.
pub fn unpack_ntfs(chain: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    for name in ["base.vmdk", "delta.vmdk"] {
        gunzip(
            &root().join(format!("testdata/ntfs/{chain}/{name}.gz")),
            &dir.join(name),
        );
    }
    dir.join("delta.vmdk")
}
