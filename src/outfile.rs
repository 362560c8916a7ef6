//! Output files named on the command line (`report -o`, `chart -o`, `lun --chart`,
//! `--chart-locking`): one rule for all of them.
//!
//! - The target must be absent or a regular file (a symlink to a regular file counts as that
//!   file, and the link is kept). Devices, FIFOs, sockets, directories and symlinks to them
//!   are refused before anything is written: run as root, `-o /dev/null` must not replace the
//!   system's node with a regular file.
//! - The content is written to a new temporary file in the target's folder, created with
//!   `O_CREAT | O_EXCL` (which never follows a symlink) under an unpredictable name, synced,
//!   and renamed over the target. Readers of the target see the old file or the new one,
//!   never half of one.
//! - On every failure (a full disk, a render error, a refused target) the temporary file is
//!   removed, and the target is left as it was.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Checks that `path` may be written as an output file, and returns the path to write: `path`
/// itself, or the regular file a symlink at `path` points to. Call it before long work, so a
/// refused target fails at once.
pub fn check(path: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |what: &str| {
        Error::Usage(format!(
            "{}: {what}; an output file must be a new file or a regular file",
            crate::sanitize::sanitize(&path.display().to_string())
        ))
    };
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(Error::io(path, "stat output", e)),
    };
    let (meta, target) = if link.file_type().is_symlink() {
        match std::fs::metadata(path) {
            // A dangling link: creating its target through it would write where the link
            // points, which nobody asked for.
            Err(_) => return Err(refuse("is a symbolic link to nothing")),
            Ok(m) => (
                m,
                std::fs::canonicalize(path).map_err(|e| Error::io(path, "resolve output", e))?,
            ),
        }
    } else {
        (link, path.to_path_buf())
    };
    let t = meta.file_type();
    if t.is_file() {
        return Ok(target);
    }
    Err(refuse(if t.is_dir() {
        "is a directory"
    } else if t.is_block_device() || t.is_char_device() {
        "is a device"
    } else if t.is_fifo() {
        "is a FIFO"
    } else if t.is_socket() {
        "is a socket"
    } else {
        "is not a regular file"
    }))
}

/// Writes an output file by the rule above: `fill` writes the content.
pub fn write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let target = check(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let (file, tmp) =
        create_temp(&dir, &name).map_err(|e| Error::io(&dir, "create temporary file", e))?;
    let guard = Temp(Some(tmp.clone()));
    let mut w = BufWriter::new(file);
    let written = fill(&mut w)
        .and_then(|()| w.flush())
        .and_then(|()| w.get_ref().sync_all());
    if let Err(e) = written {
        return Err(Error::io(path, "write", e));
    }
    drop(w);
    // The target may have been replaced by something else since `check`; look again.
    check(path)?;
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(path, "rename into place", e))?;
    guard.keep();
    Ok(())
}

/// A new file in `dir` named `.NAME.XXXXXXXXXXXXXXXX.tmp` with random hex digits, created
/// exclusively (`O_EXCL`): it cannot be a file or link someone planted.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..16 {
        let p = dir.join(format!(".{name}.{:016x}.tmp", random_u64()));
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// 64 unpredictable bits: std's hasher keys come from the OS's random source.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Removes the temporary file on drop unless it was renamed into place.
struct Temp(Option<PathBuf>);

impl Temp {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_regular_files_and_keep_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.html");
        std::fs::write(&real, b"old").unwrap();
        let link = d.path().join("link.html");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_failed_fill_leaves_no_temporary_file_and_the_target_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out.svg");
        std::fs::write(&out, b"old").unwrap();
        let e = write(&out, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("render failed"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("render failed"), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn special_files_and_directories_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            check(d.path())
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );
        assert!(
            check(Path::new("/dev/null"))
                .unwrap_err()
                .to_string()
                .contains("is a device")
        );
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert!(check(&dangling).is_err());
    }
}
