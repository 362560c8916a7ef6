//! TLS to a PostgreSQL server, set as libpq users set it: `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` in the URL, else `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
//! `PGSSLKEY` (rustls with the ring provider: no OpenSSL to install).
//!
//! - **Modes**, read as libpq reads them: `disable` (plain); `allow` and `prefer` (TLS when
//!   the server offers it, plain otherwise; `prefer` is the default); `require` (TLS or no
//!   connection); `verify-ca` (and the server's certificate chains to a trusted root);
//!   `verify-full` (and it names the host connected to).
//! - **Roots**: `sslrootcert=FILE` (PEM certificates), `sslrootcert=system` (the operating
//!   system's store), else `~/.postgresql/root.crt` when it exists. As in libpq, whenever a
//!   root is configured the chain is checked in every mode that encrypts; without one,
//!   `prefer` and `require` keep the traffic from eavesdroppers but cannot tell the server
//!   from an impostor, and the `verify-` modes refuse to start.
//! - **Client certificates** (for servers that authenticate with `cert`, or ask for one with
//!   `clientcert=verify-full`): `sslcert=FILE` and `sslkey=FILE` (PEM), else
//!   `~/.postgresql/postgresql.crt` and `postgresql.key` when the certificate exists. As in
//!   libpq, a key that its group or others may access is refused (a key owned by root may be
//!   readable by its group). Unlike libpq, a certificate or key that is named but missing is
//!   an error, not a silent connection without one.
//! - A Unix socket never carries TLS (the server refuses it there, libpq ignores `sslmode`).
//! - Encrypted keys (`sslpassword`) and revocation lists are refused by name rather than
//!   ignored: a setting that silently does nothing is worse than an error.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use postgres::config::SslMode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much protection a connection asks for (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain text.
    Disable,
    /// TLS when the server offers it (libpq tries plain first; the result is the same).
    Allow,
    /// TLS when the server offers it: the default.
    Prefer,
    /// TLS, or no connection.
    Require,
    /// TLS, with a certificate that chains to a trusted root.
    VerifyCa,
    /// TLS, with a certificate that chains to a trusted root and names the host.
    VerifyFull,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode={s:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    /// The name libpq gives it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Allow => "allow",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, Mode::VerifyCa | Mode::VerifyFull)
    }
}

/// The TLS settings a URL writes, before the environment is read.
#[derive(Debug, Clone, Default)]
pub struct Written {
    mode: Option<Mode>,
    root: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// Query parameters of libpq that this client does not implement, and why each is refused.
const UNSUPPORTED: [(&str, &str); 3] = [
    (
        "sslpassword",
        "encrypted private keys are not supported: keep the key unencrypted and readable by its owner only (openssl pkey -in KEY -out PLAIN.key; chmod 600 PLAIN.key)",
    ),
    ("sslcrl", "certificate revocation lists are not supported"),
    (
        "sslcrldir",
        "certificate revocation lists are not supported",
    ),
];

/// Takes the TLS parameters out of a URL's query. Returns the URL without them (the
/// `postgres` crate's parser knows only `disable`, `prefer` and `require`) and what they
/// said; a parameter this client cannot honour is an error that names it.
pub fn split(url: &str) -> Result<(String, Written), String> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Written::default()));
    };
    let mut written = Written::default();
    let mut kept = Vec::new();
    for part in query.split('&') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{key}: the value is not UTF-8 once decoded"))?;
        match key {
            "sslmode" => written.mode = Some(Mode::parse(&value)?),
            "sslrootcert" => written.root = Some(value.into_owned()),
            "sslcert" => written.cert = Some(value.into_owned()),
            "sslkey" => written.key = Some(value.into_owned()),
            _ => {
                if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| *k == key) {
                    return Err(format!("{key}: {why}"));
                }
                kept.push(part);
            }
        }
    }
    let url = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, written))
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// The operating system's store.
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(p) => write!(f, "sslrootcert={}", p.display()),
            Roots::System => f.write_str("sslrootcert=system"),
        }
    }
}

/// The TLS a connection uses: the mode, where its roots come from, the client certificate
/// it presents, and the client configuration built from them (files are read once, when the
/// store is named).
#[derive(Clone)]
pub struct Tls {
    mode: Mode,
    roots: Option<Roots>,
    client_cert: Option<PathBuf>,
    connector: Option<MakeRustlsConnect>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

/// A client certificate chain and its private key, read from their files.
struct Identity {
    cert: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Tls {
    /// The settings `written` and the environment (`env`, a lookup of a variable) give,
    /// with the roots read. `home` is where `~/.postgresql/root.crt` is looked for.
    pub fn resolve(
        written: &Written,
        env: impl Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Result<Tls, String> {
        let mode = match (&written.mode, env("PGSSLMODE")) {
            (Some(m), _) => *m,
            (None, Some(s)) => Mode::parse(&s).map_err(|e| format!("PGSSLMODE: {e}"))?,
            (None, None) => Mode::Prefer,
        };
        let named = written.root.clone().or_else(|| env("PGSSLROOTCERT"));
        let roots = match named.as_deref() {
            Some("system") => Some(Roots::System),
            Some(p) => Some(Roots::File(PathBuf::from(p))),
            None => home
                .as_ref()
                .map(|h| h.join(".postgresql").join("root.crt"))
                .filter(|p| p.is_file())
                .map(Roots::File),
        };
        if mode == Mode::Disable {
            return Ok(Tls {
                mode,
                roots: None,
                client_cert: None,
                connector: None,
            });
        }
        if mode.verifies() && roots.is_none() {
            return Err(format!(
                "sslmode={} needs trusted roots to check the server's certificate against: sslrootcert=FILE (PEM), sslrootcert=system, or ~/.postgresql/root.crt",
                mode.name()
            ));
        }
        let store = match &roots {
            Some(r) => Some(load(r)?),
            None => None,
        };
        let identity = identity(written, &env, home.as_deref())?;
        let client_cert = identity.as_ref().map(|i| i.cert.clone());
        let config = client_config(mode, store, identity)?;
        Ok(Tls {
            mode,
            roots,
            client_cert,
            connector: Some(MakeRustlsConnect::new(config)),
        })
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What the `postgres` crate is told: whether to ask for TLS, and whether to give up
    /// without it.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Allow | Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector, `None` for plain connections.
    pub fn connector(&self) -> Option<MakeRustlsConnect> {
        self.connector.clone()
    }

    /// The client certificate presented when the server asks for one, if any.
    pub fn client_cert(&self) -> Option<&std::path::Path> {
        self.client_cert.as_deref()
    }

    /// What the server's certificate is checked against, in words for messages.
    pub fn checked_against(&self) -> String {
        match (&self.roots, self.mode) {
            (None, _) => "not checked (no trusted roots configured)".to_string(),
            (Some(r), Mode::VerifyFull) => format!("chain and host name checked against {r}"),
            (Some(r), _) => format!("chain checked against {r}"),
        }
    }
}

/// Reads trusted roots.
fn load(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in pem_certificates("sslrootcert", path)? {
                store.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert {}: a certificate cannot be used as a root: {e}",
                        path.display()
                    )
                })?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "sslrootcert=system: the operating system's store holds no usable certificate{why}"
                ));
            }
        }
    }
    Ok(store)
}

/// Where a client certificate is set, for messages that ask for one.
pub const WHERE_CLIENT_CERTS_GO: &str = "sslcert=FILE and sslkey=FILE (or PGSSLCERT and PGSSLKEY, or ~/.postgresql/postgresql.crt and .key)";

/// Most bytes a file of certificates or a key may hold: a bundle of every public root is
/// about 250 KiB.
const ROOTS_MAX: u64 = 16 << 20;

/// A certificate or key file's bytes: a regular file of at most [`ROOTS_MAX`] bytes (a FIFO
/// would hang the run, a device such as /dev/zero would grow a buffer without end). Links
/// are followed: system bundles are often links.
fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let text = crate::bytes::read_small(path, ROOTS_MAX, true)?;
    if text.len() as u64 > ROOTS_MAX {
        return Err(std::io::Error::other(format!(
            "more than the {ROOTS_MAX} bytes a file of certificates holds"
        )));
    }
    Ok(text)
}

/// The PEM certificates of the file `setting` names: at least one, or an error that says
/// which setting and file.
fn pem_certificates(
    setting: &str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read_bounded(path)
        .map_err(|e| format!("{setting} {}: cannot read it: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} {}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client certificate and key the settings name (`sslcert`/`PGSSLCERT`,
/// `sslkey`/`PGSSLKEY`, else `~/.postgresql/postgresql.crt` and `.key`), read and checked.
/// `None` when none is named and the default certificate does not exist.
fn identity(
    written: &Written,
    env: &impl Fn(&str) -> Option<String>,
    home: Option<&std::path::Path>,
) -> Result<Option<Identity>, String> {
    let named_cert = written.cert.clone().or_else(|| env("PGSSLCERT"));
    let named_key = written.key.clone().or_else(|| env("PGSSLKEY"));
    let dir = home.map(|h| h.join(".postgresql"));
    let cert = match named_cert {
        Some(p) => PathBuf::from(p),
        None => {
            let default = dir.as_ref().map(|d| d.join("postgresql.crt"));
            match default.filter(|p| p.exists()) {
                Some(p) => p,
                None if named_key.is_some() => {
                    return Err(
                        "sslkey is set but no client certificate is: name it with sslcert=FILE (or PGSSLCERT)"
                            .to_string(),
                    );
                }
                None => return Ok(None),
            }
        }
    };
    let key = match named_key {
        Some(p) => PathBuf::from(p),
        None => dir.map(|d| d.join("postgresql.key")).ok_or_else(|| {
            format!(
                "sslcert {}: its private key is not named: sslkey=FILE (or PGSSLKEY)",
                cert.display()
            )
        })?,
    };
    let chain = pem_certificates("sslcert", &cert)?;
    key_private_enough(&key)?;
    let text =
        read_bounded(&key).map_err(|e| format!("sslkey {}: cannot read it: {e}", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        let encrypted = String::from_utf8_lossy(&text).contains("ENCRYPTED");
        if encrypted {
            format!(
                "sslkey {}: the key is encrypted, which is not supported: decrypt it (openssl pkey -in KEY -out PLAIN.key; chmod 600 PLAIN.key)",
                key.display()
            )
        } else {
            format!(
                "sslkey {}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1): {e}",
                key.display()
            )
        }
    })?;
    Ok(Some(Identity {
        cert,
        chain,
        key: key_der,
    }))
}

/// libpq's rule for a client key: a regular file that neither its group nor others may
/// access, or, owned by root, that its group may only read.
fn key_private_enough(key: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(key)
        .map_err(|e| format!("sslkey {}: cannot read it: {e}", key.display()))?;
    if !meta.is_file() {
        return Err(format!("sslkey {}: not a regular file", key.display()));
    }
    let open = if meta.uid() == 0 {
        meta.mode() & 0o037
    } else {
        meta.mode() & 0o077
    };
    if open != 0 {
        return Err(format!(
            "sslkey {}: its group or others may access it (mode {:04o}); allow its owner only (chmod 600), or, owned by root, its group to read (chmod 640)",
            key.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration: the verifier the mode and roots call for, and the certificate
/// presented when the server asks for one.
fn client_config(
    mode: Mode,
    roots: Option<RootCertStore>,
    identity: Option<Identity>,
) -> Result<ClientConfig, String> {
    let provider = provider();
    let chain = match roots {
        None => None,
        Some(store) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("trusted roots: {e}"))?,
        ),
    };
    let verifier = Arc::new(Verifier {
        chain,
        name: mode == Mode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => {
            let cert = id.cert.display().to_string();
            builder
                .with_client_auth_cert(id.chain, id.key)
                .map_err(|e| format!("sslcert {cert}: the certificate and key cannot be used: {e}"))
        }
    }
}

/// How the server's certificate is judged. The handshake's signatures are always checked,
/// so the traffic is encrypted to the holder of the certificate's key.
///
/// - No roots (`prefer`, `require` without `sslrootcert`): any certificate, as libpq.
/// - Roots: the chain must lead to one (webpki); with `name` (`verify-full`) the
///   certificate must also name the host. Without `name` the full check runs and only a name
///   mismatch is forgiven: webpki checks the chain before the name, so that error means the
///   chain was good.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS failure in words that say what to do, when `e` is one.
pub fn explain(e: &rustls::Error, tls: &Tls, host: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "TLS: the server's certificate is not signed by a trusted root ({})",
            tls.checked_against()
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS: the server's certificate does not name {host} (sslmode=verify-full checks the name; connect by a name the certificate holds)"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "TLS: the server's certificate has expired".to_string(),
        rustls::Error::AlertReceived(alert) if refuses_a_certificate(*alert) => {
            match tls.client_cert() {
                Some(c) => format!(
                    "TLS: the server refused the client certificate {} ({alert:?}): it is not issued by an authority the server trusts (its ssl_ca_file), has expired, or cannot be used for a client",
                    c.display()
                ),
                None => format!(
                    "TLS: the server requires a client certificate ({alert:?}): set {WHERE_CLIENT_CERTS_GO}"
                ),
            }
        }
        other => format!("TLS: {other}"),
    }
}

/// Alerts a server sends when it will not take the client's certificate (or its absence).
fn refuses_a_certificate(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::UnknownCA
            | A::BadCertificate
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::CertificateRequired
            | A::AccessDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let (url, w) = split(
            "postgresql://u@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgresql://u@h/db?connect_timeout=3");
        assert_eq!(w.mode, Some(Mode::VerifyFull));
        assert_eq!(w.root.as_deref(), Some("/etc/ca.pem"));
        let (url, w) = split("postgresql://u@h/db?sslmode=require").unwrap();
        assert_eq!(url, "postgresql://u@h/db");
        assert_eq!(w.mode, Some(Mode::Require));
        assert!(split("postgresql://u@h/db?sslmode=verify").is_err());
        let (_, w) = split("postgresql://u@h/db?sslcert=/c.pem&sslkey=%2Fk.pem").unwrap();
        assert_eq!(
            (w.cert.as_deref(), w.key.as_deref()),
            (Some("/c.pem"), Some("/k.pem"))
        );
        let e = split("postgresql://u@h/db?sslpassword=x").unwrap_err();
        assert!(e.starts_with("sslpassword: encrypted private keys"), "{e}");
    }

    #[test]
    fn prefer_is_the_default_and_the_url_wins_over_the_environment() {
        let tls = Tls::resolve(&Written::default(), none, None).unwrap();
        assert_eq!(tls.mode(), Mode::Prefer);
        assert_eq!(tls.ssl_mode(), SslMode::Prefer);
        assert!(tls.connector().is_some());
        let env = |k: &str| (k == "PGSSLMODE").then(|| "disable".to_string());
        let tls = Tls::resolve(&Written::default(), env, None).unwrap();
        assert_eq!(tls.mode(), Mode::Disable);
        assert!(tls.connector().is_none());
        let (_, w) = split("postgresql://h/d?sslmode=require").unwrap();
        let tls = Tls::resolve(&w, env, None).unwrap();
        assert_eq!(tls.ssl_mode(), SslMode::Require);
    }

    #[test]
    fn verifying_modes_need_roots_and_say_where_to_put_them() {
        let home = tempfile::tempdir().unwrap();
        let (_, w) = split("postgresql://h/d?sslmode=verify-ca").unwrap();
        let e = Tls::resolve(&w, none, Some(home.path().to_path_buf())).unwrap_err();
        assert!(
            e.contains("sslrootcert=FILE") && e.contains("verify-ca"),
            "{e}"
        );
        // ~/.postgresql/root.crt is read when present, and must hold certificates.
        std::fs::create_dir(home.path().join(".postgresql")).unwrap();
        std::fs::write(home.path().join(".postgresql/root.crt"), "not pem\n").unwrap();
        let e = Tls::resolve(&w, none, Some(home.path().to_path_buf())).unwrap_err();
        assert!(
            e.contains("root.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        // A device, a folder or a FIFO is refused before anything is read from it (a FIFO
        // with no writer would block the open itself).
        let fifo = home.path().join("fifo.pem");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let fifo = fifo.to_str().expect("UTF-8 path").to_string();
        for odd in ["/dev/zero", "/", fifo.as_str()] {
            let (_, w) = split(&format!(
                "postgresql://h/d?sslmode=verify-full&sslrootcert={odd}"
            ))
            .unwrap();
            let e = Tls::resolve(&w, none, None).unwrap_err();
            assert!(e.contains("not a regular file"), "{odd}: {e}");
        }
    }

    #[test]
    fn client_keys_must_be_private_plain_pem() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.crt");
        let key = dir.path().join("c.key");
        let params = |k: &std::path::Path| {
            format!(
                "postgresql://h/d?sslcert={}&sslkey={}",
                cert.display(),
                k.display()
            )
        };
        let resolve = |k: &std::path::Path| {
            let (_, w) = split(&params(k)).unwrap();
            Tls::resolve(&w, none, None)
        };
        // Not a certificate at all.
        std::fs::write(&cert, "hello\n").unwrap();
        std::fs::write(&key, "").unwrap();
        let e = resolve(&key).unwrap_err();
        assert!(
            e.contains("c.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        // An encrypted key says so and how to decrypt it.
        let ca = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        std::fs::write(&cert, ca).unwrap();
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = resolve(&key).unwrap_err();
        assert!(e.contains("encrypted") && e.contains("openssl pkey"), "{e}");
        // Readable by others: refused before it is read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve(&key).unwrap_err();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        // With sslmode=disable nothing is read.
        let (_, w) = split(&format!("{}&sslmode=disable", params(&key))).unwrap();
        assert!(Tls::resolve(&w, none, None).is_ok());
    }
}
