//! TLS on rustls: Pyro4's SSL mode (config items `SSL`, `SSL_SERVERCERT`,
//! `SSL_SERVERKEY`, `SSL_CACERTS`, `SSL_REQUIRECLIENTCERT`, `SSL_CLIENTCERT`,
//! `SSL_CLIENTKEY`), interoperable with Python's `ssl` module as Pyro4 4.82 uses it.
//!
//! What Pyro4's `socketutil.getSSLcontext` does, and what this module mirrors:
//! - server: `create_default_context(Purpose.CLIENT_AUTH)`, the certificate chain from
//!   SSL_SERVERCERT and the key from SSL_SERVERKEY (or from the certificate file when
//!   the key is empty), CA certificates from SSL_CACERTS (file or directory), and
//!   `CERT_REQUIRED` when SSL_REQUIRECLIENTCERT is set, else no client certificate is
//!   asked for (`CERT_NONE`);
//! - client: `create_default_context(Purpose.SERVER_AUTH)`: the system's trusted roots
//!   plus SSL_CACERTS, host name checking against the host in the URI
//!   (`server_hostname=connect[0]`), and a client certificate from SSL_CLIENTCERT /
//!   SSL_CLIENTKEY when given (two-way TLS).
//!
//! Encrypted private keys (SSL_SERVERKEYPASSWD / SSL_CLIENTKEYPASSWD) are not
//! supported: decrypt the key file first. Unix domain sockets stay plain.
//!
//! Pyro4's SSL setting is process-wide (`Pyro4.config.SSL`); so is the client side
//! here: [`process_client_config`] is what [`crate::Connection::connect`] uses, taken from
//! the process configuration ([`Config::global`], i.e. `PYRO_SSL=true` and friends) unless
//! [`set_process_client_config`] replaced it. Daemons take their TLS settings from
//! the [`Config`] they are built with (or [`crate::DaemonBuilder::tls`]).

use crate::config::Config;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Why a TLS configuration could not be built from the SSL_* settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which setting the file came from (`SSL_SERVERCERT`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file held no PEM certificate or key where one was needed.
    #[error("{what} {path}: {problem}")]
    Pem {
        /// Which setting the file came from.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// A setting is missing or not supported.
    #[error("{0}")]
    Config(String),
    /// rustls refused the certificates or keys.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider: ring (no cmake or assembler needed to build).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file.
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(what, path)?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            problem: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_path_buf(),
            problem: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(what, path)?;
    let pem_err = |problem: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        problem,
    };
    match rustls_pemfile::private_key(&mut bytes.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => {
            let text = String::from_utf8_lossy(&bytes);
            Err(pem_err(if text.contains("ENCRYPTED") {
                "the private key is encrypted; encrypted keys are not supported, decrypt it first"
                    .into()
            } else {
                "no private key found".into()
            }))
        }
        Err(e) => Err(pem_err(format!("invalid PEM: {e}"))),
    }
}

/// CA certificates from a file, or from every file in a directory (Python's
/// `load_verify_locations(cafile=...)` / `(capath=...)`).
fn add_cacerts(roots: &mut RootCertStore, cacerts: &str) -> Result<(), TlsError> {
    let path = Path::new(cacerts);
    let files: Vec<PathBuf> = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| TlsError::Read {
            what: "SSL_CACERTS",
            path: path.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let from_dir = files.len() != 1 || path.is_dir();
    for file in files {
        match load_certs("SSL_CACERTS", &file) {
            Ok(certs) => {
                for cert in certs {
                    roots.add(cert)?;
                }
            }
            // A directory may hold other files; a named file must be certificates.
            Err(TlsError::Pem { .. }) if from_dir => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The system's trusted roots (Python's `load_default_certs`). Unreadable system
/// stores are skipped, as Python skips them.
fn add_system_roots(roots: &mut RootCertStore) {
    static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    let certs = SYSTEM.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("system CA certificates: {e}");
        }
        found.certs
    });
    let _ = roots.add_parsable_certificates(certs.iter().cloned());
}

/// Certificate chain and key: the key from `key_path`, or from the certificate file
/// when `key_path` is empty (Python's `load_cert_chain(certfile, None)`).
fn cert_and_key(
    cert_what: &'static str,
    cert_path: &str,
    key_what: &'static str,
    key_path: &str,
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    if !password.is_empty() {
        return Err(TlsError::Config(format!(
            "{key_what}PASSWD is set, but encrypted private keys are not supported; decrypt the key file"
        )));
    }
    let certs = load_certs(cert_what, Path::new(cert_path))?;
    let key = if key_path.is_empty() {
        load_key(cert_what, Path::new(cert_path))?
    } else {
        load_key(key_what, Path::new(key_path))?
    };
    Ok((certs, key))
}

/// The server side of Pyro4's `getSSLcontext(servercert=..., serverkey=..., cacerts=...)`
/// with SSL_REQUIRECLIENTCERT deciding whether a client certificate is required.
pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, TlsError> {
    if config.ssl_servercert.is_empty() {
        return Err(TlsError::Config(
            "SSL is enabled but SSL_SERVERCERT is not set".into(),
        ));
    }
    let (certs, key) = cert_and_key(
        "SSL_SERVERCERT",
        &config.ssl_servercert,
        "SSL_SERVERKEY",
        &config.ssl_serverkey,
        &config.ssl_serverkeypasswd,
    )?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if config.ssl_requireclientcert {
        let mut roots = RootCertStore::empty();
        if config.ssl_cacerts.is_empty() {
            add_system_roots(&mut roots);
        } else {
            add_cacerts(&mut roots, &config.ssl_cacerts)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Config(
                "SSL_REQUIRECLIENTCERT is set but no CA certificates are available to verify clients \
                 (set SSL_CACERTS)"
                    .into(),
            ));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

/// The client side of Pyro4's `getSSLcontext(clientcert=..., clientkey=..., cacerts=...)`:
/// system roots plus SSL_CACERTS, and a client certificate when SSL_CLIENTCERT is set.
/// Built once per distinct setting and cached, as Pyro4 caches its context.
pub fn client_config(config: &Config) -> Result<Arc<ClientConfig>, TlsError> {
    type Key = (String, String, String, String);
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<ClientConfig>>>> = OnceLock::new();
    let key: Key = (
        config.ssl_cacerts.clone(),
        config.ssl_clientcert.clone(),
        config.ssl_clientkey.clone(),
        config.ssl_clientkeypasswd.clone(),
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let mut roots = RootCertStore::empty();
    add_system_roots(&mut roots);
    if !config.ssl_cacerts.is_empty() {
        add_cacerts(&mut roots, &config.ssl_cacerts)?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let built = if config.ssl_clientcert.is_empty() {
        builder.with_no_client_auth()
    } else {
        let (certs, key) = cert_and_key(
            "SSL_CLIENTCERT",
            &config.ssl_clientcert,
            "SSL_CLIENTKEY",
            &config.ssl_clientkey,
            &config.ssl_clientkeypasswd,
        )?;
        builder.with_client_auth_cert(certs, key)?
    };
    let built = Arc::new(built);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, built.clone());
    }
    Ok(built)
}

/// `Some(setting)` once [`set_process_client_config`] was called.
static PROCESS_CLIENT: RwLock<Option<Option<Arc<ClientConfig>>>> = RwLock::new(None);

/// Replace the process-wide client TLS setting (what `Pyro4.config.SSL = True` plus the
/// SSL_CLIENT*/SSL_CACERTS items do for every proxy in a Python process). `None`: plain
/// connections.
pub fn set_process_client_config(tls: Option<Arc<ClientConfig>>) {
    if let Ok(mut p) = PROCESS_CLIENT.write() {
        *p = Some(tls);
    }
}

/// The process-wide client TLS setting: the one given to [`set_process_client_config`],
/// else built from [`Config::global`] when its SSL item is on (an unusable SSL setup is
/// reported as an error on every connect, never silently downgraded to plain TCP).
pub fn process_client_config() -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if let Some(set) = PROCESS_CLIENT.read().ok().and_then(|p| p.clone()) {
        return Ok(set);
    }
    let global = Config::global();
    if global.ssl {
        client_config(global).map(Some)
    } else {
        Ok(None)
    }
}

/// The client TLS setting for a connection made with `config`: its own SSL items when
/// SSL is on there, else the process-wide setting.
pub fn client_config_for(config: &Config) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if config.ssl {
        client_config(config).map(Some)
    } else {
        process_client_config()
    }
}

/// First bytes of a TLS record (handshake 0x16 or alert 0x15, version 3.x): used to
/// tell a plain peer that the other side speaks TLS.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x17, 0x03, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pyro-rs-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn configs_build_from_generated_pem_files() {
        let dir = tmp("ok");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(&dir, "cert.pem", &ca.cert.pem());
        let key = write(&dir, "key.pem", &ca.key_pair.serialize_pem());
        let both = write(
            &dir,
            "both.pem",
            &format!("{}{}", ca.cert.pem(), ca.key_pair.serialize_pem()),
        );
        let mut c = Config {
            ssl: true,
            ssl_servercert: cert.clone(),
            ssl_serverkey: key.clone(),
            ..Config::default()
        };
        server_config(&c).unwrap();
        // key inside the certificate file, as Python's load_cert_chain(certfile) allows
        c.ssl_servercert = both.clone();
        c.ssl_serverkey = String::new();
        server_config(&c).unwrap();
        // two-way: CA certificates from a file, then from a directory
        c.ssl_requireclientcert = true;
        c.ssl_cacerts = cert.clone();
        server_config(&c).unwrap();
        c.ssl_cacerts = dir.display().to_string();
        server_config(&c).unwrap();
        let client = Config {
            ssl: true,
            ssl_cacerts: cert.clone(),
            ssl_clientcert: cert,
            ssl_clientkey: key,
            ..Config::default()
        };
        let a = client_config(&client).unwrap();
        let b = client_config(&client).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "client contexts are cached like Pyro4's"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let dir = tmp("bad");
        let no_cert = Config {
            ssl: true,
            ..Config::default()
        };
        assert!(server_config(&no_cert)
            .unwrap_err()
            .to_string()
            .contains("SSL_SERVERCERT"));
        let missing = Config {
            ssl: true,
            ssl_servercert: dir.join("nope.pem").display().to_string(),
            ..Config::default()
        };
        let e = server_config(&missing).unwrap_err().to_string();
        assert!(e.starts_with("cannot read SSL_SERVERCERT"), "{e}");
        let junk = write(&dir, "junk.pem", "not pem at all");
        let e = server_config(&Config {
            ssl: true,
            ssl_servercert: junk,
            ..Config::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("no certificate found"), "{e}");
        let e = client_config(&Config {
            ssl: true,
            ssl_clientcert: "x".into(),
            ssl_clientkeypasswd: "pw".into(),
            ..Config::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("encrypted private keys are not supported"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(looks_like_tls(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_tls(b"PYRO\x00\x30"));
        assert!(!looks_like_tls(&[0x15]));
    }
}
