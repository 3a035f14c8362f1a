//! `--web.config.file`: the Prometheus exporter-toolkit web configuration (TLS, basic auth, response headers), so
//! a file written for node_exporter works here unchanged.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
//!   client_ca_file: ca.crt
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...    # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! ```
//!
//! Relative paths are relative to the file, as in exporter-toolkit. Keys this server does not implement
//! (`cipher_suites`, `curve_preferences`, `http2`, …) are accepted and ignored with a warning rather than refused, so
//! a shared file never stops the exporter.

use http::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why a web config cannot be used. Every message names the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {file}: cannot read it: {source} (fix: point --web.config.file at a readable file)")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("web config {file}: {message} (fix: use the exporter-toolkit format: tls_server_config, basic_auth_users, http_server_config)")]
    Parse { file: PathBuf, message: String },
    #[error("web config {file}: {field}: {message} (fix: {fix})")]
    Field { file: PathBuf, field: &'static str, message: String, fix: &'static str },
}

impl WebConfigError {
    /// `(what is wrong, how to fix it)`, for the configuration report.
    pub fn parts(&self) -> (String, &'static str) {
        match self {
            WebConfigError::Read { file, source } => {
                (format!("{}: cannot read it: {source}", file.display()), "point --web.config.file at a readable file")
            }
            WebConfigError::Parse { file, message } => (
                format!("{}: {message}", file.display()),
                "use the exporter-toolkit format: tls_server_config, basic_auth_users, http_server_config",
            ),
            WebConfigError::Field { file, field, message, fix } => {
                (format!("{}: {field}: {message}", file.display()), fix)
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct TlsFile {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct HttpFile {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// A loaded web config: what the HTTP server enforces.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// TLS for every connection when set; plain HTTP to such a port fails the handshake.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth for every request when set.
    pub auth: Option<Arc<BasicAuth>>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("basic_auth_users", &self.auth.as_ref().map(|a| a.users.len()))
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// The web config in force, swapped whole by a config reload; each connection and request reads it as it starts.
#[derive(Debug, Clone, Default)]
pub struct LiveWebConfig(Arc<std::sync::RwLock<WebConfig>>);

impl LiveWebConfig {
    pub fn new(web: WebConfig) -> Self {
        LiveWebConfig(Arc::new(std::sync::RwLock::new(web)))
    }

    /// The config now (cheap: `Arc`s and a few headers).
    pub fn get(&self) -> WebConfig {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, web: WebConfig) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = web;
    }
}

/// Users and their bcrypt hashes. A bcrypt check costs tens of milliseconds by design; a scraper sends the same
/// credentials every few seconds, so a successful check is remembered by a SHA-256 of user and password (never the
/// password itself).
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// Checked when the user is unknown, so a wrong user name costs as long as a wrong password.
const DUMMY_HASH: &str = "$2b$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z0RyzCFqVwP3ZzyESRO1j4hW";
/// Remembered successful logins, at most (a cache, not a store: clearing it only costs a bcrypt check).
const MAX_VERIFIED: usize = 1024;

impl BasicAuth {
    /// Whether an `Authorization` header value grants access.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        use base64::Engine as _;
        let Some(encoded) = authorization.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        let Ok(pair) = String::from_utf8(decoded) else { return false };
        let Some((user, password)) = pair.split_once(':') else { return false };
        let key = fingerprint(user, password);
        if self.lock().contains(&key) {
            return true;
        }
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            let mut v = self.lock();
            if v.len() >= MAX_VERIFIED {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fingerprint(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(&[0]);
    ctx.update(password.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Read and check `path`. Problems are errors before anything listens.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read { file: path.into(), source })?;
    parse(&text, path)
}

/// Parse a web config whose relative paths are relative to `path`'s directory.
pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| WebConfigError::Parse { file: path.into(), message: e.to_string() })?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let field = |field, message: String, fix| WebConfigError::Field { file: path.into(), field, message, fix };
    ignore_unknown(path, "", &file.other);
    let mut cfg = WebConfig::default();
    if let Some(tls) = &file.tls_server_config {
        ignore_unknown(path, "tls_server_config.", &tls.other);
        cfg.tls = Some(Arc::new(tls_config(tls, base, &field)?));
    }
    if !file.basic_auth_users.is_empty() {
        for (user, hash) in &file.basic_auth_users {
            if user.contains(':') {
                return Err(field(
                    "basic_auth_users",
                    format!("user `{user}` contains `:`"),
                    "pick a user name without `:`",
                ));
            }
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                return Err(field(
                    "basic_auth_users",
                    format!("the password of `{user}` is not a bcrypt hash"),
                    "store a bcrypt hash, e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`, never the password",
                ));
            }
        }
        cfg.auth = Some(Arc::new(BasicAuth { users: file.basic_auth_users.clone(), verified: Mutex::default() }));
    }
    if let Some(http) = &file.http_server_config {
        ignore_unknown(path, "http_server_config.", &http.other);
        for (k, v) in &http.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                field("http_server_config.headers", format!("`{k}` is not a header name"), "fix the name")
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                field(
                    "http_server_config.headers",
                    format!("the value of `{k}` is not a header value"),
                    "fix the value",
                )
            })?;
            cfg.headers.push((name, value));
        }
    }
    Ok(cfg)
}

fn ignore_unknown(path: &Path, prefix: &str, other: &BTreeMap<String, serde_json::Value>) {
    for k in other.keys() {
        tracing::warn!(file = %path.display(), key = %format!("{prefix}{k}"), "web config key not supported by this exporter; ignored");
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn tls_config(
    tls: &TlsFile,
    base: &Path,
    field: &dyn Fn(&'static str, String, &'static str) -> WebConfigError,
) -> Result<rustls::ServerConfig, WebConfigError> {
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
        return Err(field(
            "tls_server_config",
            "cert_file and key_file are both required".into(),
            "set tls_server_config.cert_file and tls_server_config.key_file (PEM)",
        ));
    };
    let cert_path = resolve(base, cert);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert_path).and_then(|it| it.collect::<Result<Vec<_>, _>>()).map_err(|e| {
            field(
                "tls_server_config.cert_file",
                format!("{}: {e}", cert_path.display()),
                "give a PEM certificate chain",
            )
        })?;
    if certs.is_empty() {
        return Err(field(
            "tls_server_config.cert_file",
            format!("{}: no certificate in it", cert_path.display()),
            "give a PEM certificate chain",
        ));
    }
    let key_path = resolve(base, key);
    // The key's own parse error could quote key material; say only where and what.
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| {
        field(
            "tls_server_config.key_file",
            format!("{}: no usable PEM private key", key_path.display()),
            "give a PEM (PKCS#8, PKCS#1 or SEC1) private key",
        )
    })?;
    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref(), field)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| field("tls_server_config.min_version", e.to_string(), "use TLS12 or TLS13"))?;
    let client_auth = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match client_auth {
        "NoClientCert" | "" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let Some(ca) = &tls.client_ca_file else {
                return Err(field(
                    "tls_server_config.client_ca_file",
                    format!("client_auth_type {client_auth} needs it"),
                    "set client_ca_file to the PEM CA that signs client certificates",
                ));
            };
            let ca_path = resolve(base, ca);
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(&ca_path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    field(
                        "tls_server_config.client_ca_file",
                        format!("{}: {e}", ca_path.display()),
                        "give PEM CA certificates",
                    )
                })?;
            for c in cas {
                roots.add(c).map_err(|e| {
                    field("tls_server_config.client_ca_file", e.to_string(), "give PEM CA certificates")
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if client_auth == "VerifyClientCertIfGiven" { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier
                .build()
                .map_err(|e| field("tls_server_config.client_ca_file", e.to_string(), "give PEM CA certificates"))?;
            builder.with_client_cert_verifier(verifier)
        }
        other => {
            return Err(field(
                "tls_server_config.client_auth_type",
                format!("`{other}` is not supported"),
                "use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            ))
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| field("tls_server_config.key_file", e.to_string(), "give the private key of cert_file"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
    field: &dyn Fn(&'static str, String, &'static str) -> WebConfigError,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    let rank = |v: Option<&str>, which: &'static str, default: u8| -> Result<u8, WebConfigError> {
        match v {
            None | Some("") => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some("TLS10" | "TLS11") => {
                Err(field(which, "TLS 1.0 and 1.1 are not offered".into(), "use TLS12 or TLS13"))
            }
            Some(o) => Err(field(which, format!("`{o}` is not a TLS version"), "use TLS12 or TLS13")),
        }
    };
    let (lo, hi) = (rank(min, "tls_server_config.min_version", 12)?, rank(max, "tls_server_config.max_version", 13)?);
    let mut v = Vec::new();
    if lo <= 12 && hi >= 12 {
        v.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err(field(
            "tls_server_config.min_version",
            "min_version is above max_version".into(),
            "lower min_version",
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("/nonexistent/web.yml")
    }

    #[test]
    fn empty_file_means_plain_open_http() {
        let c = parse("", &p()).unwrap();
        assert!(c.tls.is_none() && c.auth.is_none() && c.headers.is_empty());
    }

    #[test]
    fn basic_auth_checks_bcrypt_and_remembers_success() {
        let hash = bcrypt::hash("hunter2", 4).unwrap();
        let c = parse(&format!("basic_auth_users:\n  prom: '{hash}'\n"), &p()).unwrap();
        let auth = c.auth.unwrap();
        use base64::Engine as _;
        let h = |u: &str, pw: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}")))
        };
        assert!(auth.allows(Some(&h("prom", "hunter2"))));
        assert!(auth.allows(Some(&h("prom", "hunter2"))), "cached");
        assert!(!auth.allows(Some(&h("prom", "wrong"))));
        assert!(!auth.allows(Some(&h("nobody", "hunter2"))));
        assert!(!auth.allows(None));
        assert!(!auth.allows(Some("Bearer abc")));
        assert!(!auth.allows(Some("Basic !!!")));
    }

    #[test]
    fn a_plain_password_is_refused_naming_the_field() {
        let e = parse("basic_auth_users:\n  prom: hunter2\n", &p()).unwrap_err().to_string();
        assert!(e.contains("basic_auth_users") && e.contains("bcrypt") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn tls_needs_both_files_and_readable_pem() {
        let e = parse("tls_server_config:\n  cert_file: a.crt\n", &p()).unwrap_err().to_string();
        assert!(e.contains("key_file"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", &p()).unwrap_err().to_string();
        assert!(e.contains("tls_server_config.cert_file") && e.contains("/nonexistent/a.crt"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS10\n", &p());
        assert!(e.is_err());
    }

    #[test]
    fn unknown_keys_are_ignored_and_headers_checked() {
        let c = parse("http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\nfoo: 1\n", &p())
            .unwrap();
        assert_eq!(c.headers.len(), 1);
        let e = parse("http_server_config:\n  headers:\n    'bad header': x\n", &p()).unwrap_err().to_string();
        assert!(e.contains("http_server_config.headers"), "{e}");
    }

    #[test]
    fn the_unknown_user_hash_is_a_real_bcrypt_hash() {
        // A malformed hash would fail fast and make unknown user names cheaper to probe than wrong passwords.
        assert_eq!(bcrypt::verify("anything", DUMMY_HASH).ok(), Some(false));
    }

    #[test]
    fn versions_order() {
        let f = |field: &'static str, m: String, fix: &'static str| WebConfigError::Field {
            file: p(),
            field,
            message: m,
            fix,
        };
        assert_eq!(versions(None, None, &f).unwrap().len(), 2);
        assert_eq!(versions(Some("TLS13"), None, &f).unwrap().len(), 1);
        assert!(versions(Some("TLS13"), Some("TLS12"), &f).is_err());
    }
}
