//! Tables for the operator of a history store: what `db check` found ([`Health`]) and what
//! `db migrate` did. The JSON of `db check` is the `Health` value as it is (docs/JSON.md).

use std::io::{self, Write};

use crate::history::{Health, Location, Migrated, Readiness, schema};

/// `db check`: the store, its status, and (when it could be read) its schema, points and
/// what `db migrate` would do.
pub fn render_health(w: &mut dyn Write, h: &Health) -> io::Result<()> {
    let server = h
        .server_version
        .as_deref()
        .map(|v| format!(", server {v}"))
        .unwrap_or_default();
    writeln!(w, "store:     {} ({}{server})", h.store, h.backend)?;
    let status = match h.status {
        Readiness::Ok => "ok: ready",
        Readiness::Missing => "missing: no store yet",
        Readiness::Behind => "behind: migrations pending",
        Readiness::Newer => "newer: made by a newer deltascope",
        Readiness::Failed => "failed: cannot be reached or read",
    };
    writeln!(w, "status:    {status}")?;
    if let Some(t) = &h.tls {
        match &t.protocol {
            Some(p) => {
                writeln!(
                    w,
                    "tls:       {p} (sslmode={}; certificate {})",
                    t.sslmode, t.certificate
                )?;
                if let Some(c) = &t.client_certificate {
                    writeln!(w, "client:    certificate {c}")?;
                }
            }
            None => writeln!(w, "tls:       none, not encrypted (sslmode={})", t.sslmode)?,
        }
    }
    if let Some(e) = &h.error {
        writeln!(w, "error:     {e}")?;
        return Ok(());
    }
    if h.exists {
        writeln!(
            w,
            "schema:    version {} (this deltascope writes {})",
            h.schema_version, h.known_version
        )?;
        let span = match (&h.first_at, &h.last_at) {
            (Some(a), Some(b)) => format!(", {a} to {b}"),
            _ => String::new(),
        };
        writeln!(w, "points:    {} in {} disk(s){span}", h.points, h.disks)?;
    }
    if h.pending.is_empty() {
        writeln!(w, "migrate:   nothing to do")?;
    } else {
        for m in &h.pending {
            writeln!(w, "migrate:   would apply {}: {}", m.version, m.what)?;
        }
    }
    Ok(())
}

/// `db migrate`: the store, each migration applied, and the schema version now.
pub fn render_migrated(w: &mut dyn Write, store: &Location, done: Migrated) -> io::Result<()> {
    writeln!(w, "store: {store}")?;
    let applied: Vec<_> = schema::pending(done.from)
        .take_while(|m| m.version <= done.to)
        .collect();
    for m in &applied {
        writeln!(w, "applied migration {}: {}", m.version, m.what)?;
    }
    if applied.is_empty() {
        writeln!(w, "schema version {}: up to date, nothing to do", done.to)
    } else {
        writeln!(w, "schema version {} (was {})", done.to, done.from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Step;

    fn health(status: Readiness) -> Health {
        Health {
            store: "h.sqlite".into(),
            backend: "sqlite",
            status,
            reachable: true,
            server_version: None,
            tls: None,
            exists: true,
            schema_version: 1,
            known_version: 2,
            pending: vec![Step {
                version: 2,
                what: "a step",
            }],
            points: 3,
            disks: 1,
            first_at: Some("2026-11-01T00:00:00Z".into()),
            last_at: Some("2026-11-08T00:00:00Z".into()),
            error: None,
        }
    }

    #[test]
    fn a_store_behind_lists_what_migrate_would_do() {
        let mut out = Vec::new();
        render_health(&mut out, &health(Readiness::Behind)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "store:     h.sqlite (sqlite)\n\
             status:    behind: migrations pending\n\
             schema:    version 1 (this deltascope writes 2)\n\
             points:    3 in 1 disk(s), 2026-11-01T00:00:00Z to 2026-11-08T00:00:00Z\n\
             migrate:   would apply 2: a step\n"
        );
    }

    #[test]
    fn an_unreachable_store_shows_only_why() {
        let mut h = health(Readiness::Failed);
        h.error = Some("connection refused".into());
        let mut out = Vec::new();
        render_health(&mut out, &h).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("error:     connection refused\n"), "{text}");
        assert!(!text.contains("points:"), "{text}");
    }
}
