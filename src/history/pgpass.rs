//! libpq's password file, read as libpq reads it, because the `postgres` crate does not: a
//! user who keeps the store's password in `~/.pgpass` (or in the file `$PGPASSFILE` names)
//! for `psql` gets the same password in deltascope.
//!
//! The file has one `hostname:port:database:username:password` line per server; `*` matches
//! anything in the first four fields, `\:` and `\\` are a literal colon and backslash, lines
//! starting with `#` are comments, and the first matching line wins. A Unix-socket host is
//! matched as `localhost`. The file is ignored, with a warning, when it is not a regular file
//! or when its group or others may access it (libpq asks for mode 0600 or less).

use std::path::{Path, PathBuf};

/// The password the text of a password file gives for this connection, if a line matches.
pub fn lookup(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    for line in text.lines() {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = [host, port.as_str(), dbname, user]
            .into_iter()
            .try_fold(line, field);
        if let Some(rest) = rest {
            return Some(password(rest));
        }
    }
    None
}

/// Matches one field at the start of `line` against `want` and returns what follows its
/// colon (libpq's `pwdfMatchesString`: `*` alone matches anything, a backslash escapes the
/// next character).
fn field<'a>(line: &'a str, want: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut want = want.chars().peekable();
    let mut it = line.char_indices();
    while let Some((i, c)) = it.next() {
        let (c, escaped) = if c == '\\' {
            (it.next()?.1, true)
        } else {
            (c, false)
        };
        if c == ':' && !escaped && want.peek().is_none() {
            return Some(&line[i + 1..]);
        }
        if want.next() != Some(c) {
            return None;
        }
    }
    None
}

/// The password field: up to the first unescaped colon, backslashes removed.
fn password(rest: &str) -> String {
    let mut out = String::new();
    let mut it = rest.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            ':' => break,
            '\\' if it.peek().is_some() => out.extend(it.next()),
            c => out.push(c),
        }
    }
    out
}

/// The file libpq reads: `$PGPASSFILE`, else `~/.pgpass`.
pub fn file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(f) if !f.is_empty() => Some(PathBuf::from(f)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")),
    }
}

/// The password the password file gives, and a warning when the file was there but ignored.
pub fn password_for(
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> (Option<String>, Option<String>) {
    let Some(path) = file() else {
        return (None, None);
    };
    read(&path, host, port, dbname, user)
}

fn read(
    path: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> (Option<String>, Option<String>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return (None, None);
    };
    if !meta.is_file() {
        return (
            None,
            Some(format!(
                "password file {} is not a plain file",
                path.display()
            )),
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return (
            None,
            Some(format!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            )),
        );
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    (lookup(&text, host, port, dbname, user), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\
                    db.example:5432:estate:ops:first\n\
                    *:*:estate:ops:second\n\
                    *:*:*:*:fallback\n";
        let l = |h, p, d, u| lookup(text, h, p, d, u);
        assert_eq!(
            l("db.example", 5432, "estate", "ops").as_deref(),
            Some("first")
        );
        assert_eq!(l("other", 5433, "estate", "ops").as_deref(), Some("second"));
        assert_eq!(
            l("other", 5433, "estate", "dba").as_deref(),
            Some("fallback")
        );
        // A field is matched whole, not as a prefix.
        assert_eq!(
            l("db.example", 5432, "estate2", "ops").as_deref(),
            Some("fallback")
        );
        assert_eq!(lookup("h:1:d:u:p\n", "h", 1, "d", "u2"), None);
        assert_eq!(lookup("h:1:d:u:p\n", "h", 11, "d", "u"), None);
    }

    #[test]
    fn escapes_sockets_and_line_ends_follow_libpq() {
        // \: is a colon in any field, \\ a backslash; the password stops at a bare colon.
        let text = "fe80\\:\\:1:5432:d:u:pa\\:ss\\\\word:ignored\r\n";
        assert_eq!(
            lookup(text, "fe80::1", 5432, "d", "u").as_deref(),
            Some("pa:ss\\word")
        );
        // A Unix-socket directory matches the line for localhost.
        let text = "localhost:5432:d:u:sock\n";
        assert_eq!(
            lookup(text, "/var/run/postgresql", 5432, "d", "u").as_deref(),
            Some("sock")
        );
        // A line with fewer than five fields gives an empty password only when it has the
        // four colons; a comment never matches.
        assert_eq!(lookup("#h:1:d:u:p\n", "#h", 1, "d", "u"), None);
        assert_eq!(lookup("h:1:d:u\n", "h", 1, "d", "u"), None);
        assert_eq!(lookup("h:1:d:u:\n", "h", 1, "d", "u").as_deref(), Some(""));
        // `*` is a wildcard only alone in its field.
        assert_eq!(lookup("h*:1:d:u:p\n", "hx", 1, "d", "u"), None);
    }

    #[test]
    fn a_file_others_can_read_is_ignored_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("pgpass");
        std::fs::write(&f, "*:*:*:*:secret\n").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read(&f, "h", 1, "d", "u"), (Some("secret".into()), None));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (pw, warning) = read(&f, "h", 1, "d", "u");
        assert_eq!(pw, None);
        assert!(warning.expect("warning").contains("0600"));
        let (pw, warning) = read(dir.path(), "h", 1, "d", "u");
        assert_eq!(pw, None);
        assert!(warning.expect("warning").contains("not a plain file"));
        assert_eq!(
            read(&dir.path().join("none"), "h", 1, "d", "u"),
            (None, None)
        );
    }
}
