//! The Pyro4 name server (Pyro4's `naming.py` and `naming_storage.py`): the
//! `Pyro.NameServer` object served by a [`Daemon`], its storage backends and the UDP
//! broadcast responder.
//!
//! - [`NameServerCore`]: the name server's methods as plain Rust over a [`Storage`].
//! - [`MemoryStorage`] (Pyro4's default) and [`SqlStorage`] (`-s sql:FILE`, Pyro4's
//!   schema, durable before the reply).
//! - [`BroadcastServer`]: answers `GET_NSURI` datagrams with the name server's URI.
//! - [`NameServerDaemon`]: all of it wired together, as Pyro4's `startNSloop`.
//!
//! Not implemented: `NS_AUTOCLEAN` (periodic removal of unreachable registrations) and
//! the `dbm:` storage.

mod broadcast;
mod object;
mod sql;
mod storage;

pub use broadcast::{interface_address_for, reply_for, BroadcastServer, BROADCAST_REQUEST};
pub use object::{
    nameserver_object, NameRegex, NameServerCore, NAMESERVER_METADATA, NAMESERVER_METHODS,
};
pub use sql::SqlStorage;
pub use storage::{Entry, MemoryStorage, Storage, StorageError, StorageResult};

use crate::config::Config;
use crate::daemon::{Daemon, DaemonBuilder, DaemonError, DaemonHandle};
use pyro_wire::{Location, Uri, NAMESERVER_NAME};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Errors starting a name server.
#[derive(Debug, thiserror::Error)]
pub enum NameServerError {
    /// Bad option (storage spec, NAT without host, ...): Pyro4's ValueError.
    #[error("{0}")]
    Config(String),
    /// The storage could not be opened.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The daemon could not be created.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The broadcast responder could not bind.
    #[error("cannot start the broadcast server: {0}")]
    Broadcast(#[source] std::io::Error),
    /// The self-registration failed.
    #[error("cannot register the name server: {0}")]
    Register(String),
}

/// Which storage (Pyro4's `-s/--storage`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageSpec {
    /// Volatile in-memory dict (the default).
    #[default]
    Memory,
    /// SQLite database file (`sql:FILE`).
    Sql(PathBuf),
}

impl FromStr for StorageSpec {
    type Err = NameServerError;

    /// `memory` or `sql:FILE`. `dbm:FILE` is Pyro4-only and refused here.
    fn from_str(s: &str) -> Result<StorageSpec, NameServerError> {
        if s.is_empty() || s == "memory" {
            return Ok(StorageSpec::Memory);
        }
        if let Some(file) = s.strip_prefix("sql:").filter(|f| !f.is_empty()) {
            return Ok(StorageSpec::Sql(PathBuf::from(file)));
        }
        if s.starts_with("dbm:") && s.len() > 4 {
            return Err(NameServerError::Config(
                "dbm storage is not supported by pyro-rs; use memory or sql:FILE".into(),
            ));
        }
        Err(NameServerError::Config(format!(
            "invalid storage type '{s}'"
        )))
    }
}

impl StorageSpec {
    /// Open the storage. Blocking (SQLite opens and migrates the file).
    pub fn open(&self) -> Result<Arc<dyn Storage>, NameServerError> {
        Ok(match self {
            StorageSpec::Memory => Arc::new(MemoryStorage::new()),
            StorageSpec::Sql(path) => Arc::new(SqlStorage::open(path)?),
        })
    }
}

/// Options of a name server (the arguments of Pyro4's `startNSloop`). `None` takes the
/// configuration's value (HOST, NS_PORT, NATHOST/NATPORT, NS_BCHOST, NS_BCPORT).
#[derive(Debug, Clone)]
pub struct NameServerOptions {
    /// Configuration (PYRO_* settings).
    pub config: Arc<Config>,
    /// Bind host (HOST).
    pub host: Option<String>,
    /// Bind port (NS_PORT; 0 = any free port).
    pub port: Option<u16>,
    /// Unix domain socket instead of TCP.
    pub unixsocket: Option<String>,
    /// Host advertised in URIs behind NAT.
    pub nathost: Option<String>,
    /// Port advertised behind NAT (0 = the bound port).
    pub natport: Option<u16>,
    /// Storage backend.
    pub storage: StorageSpec,
    /// HMAC key shared with clients.
    pub hmac_key: Option<Vec<u8>>,
    /// Start the broadcast responder (Pyro4's `enableBroadcast`; `-x` turns it off).
    pub enable_broadcast: bool,
    /// Broadcast responder host (NS_BCHOST; empty = all interfaces).
    pub bchost: Option<String>,
    /// Broadcast responder port (NS_BCPORT; 0 = any).
    pub bcport: Option<u16>,
    /// Start the responder even where Pyro4 would not (name server on loopback or IPv6).
    /// `pyro-ns` sets this when `--bchost` is given explicitly.
    pub force_broadcast: bool,
}

impl NameServerOptions {
    /// Defaults from a configuration: memory storage, broadcast on.
    pub fn new(config: Arc<Config>) -> NameServerOptions {
        NameServerOptions {
            config,
            host: None,
            port: None,
            unixsocket: None,
            nathost: None,
            natport: None,
            storage: StorageSpec::Memory,
            hmac_key: None,
            enable_broadcast: true,
            bchost: None,
            bcport: None,
            force_broadcast: false,
        }
    }
}

/// Why there is (or is not) a broadcast responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastStatus {
    /// Running on this `host:port`.
    Running(String),
    /// Not started: the name server is bound to a loopback address.
    Localhost,
    /// Not started: the name server uses IPv6.
    Ipv6,
    /// Not started: Unix domain socket.
    UnixSocket,
    /// Switched off (`-x`).
    Disabled,
}

/// A name server: a daemon serving `Pyro.NameServer` (and `Pyro.Daemon`), its storage
/// and the optional broadcast responder. Pyro4's `NameServerDaemon` plus `startNSloop`.
pub struct NameServerDaemon {
    daemon: Daemon,
    core: Arc<NameServerCore>,
    uri: Uri,
    internal_uri: Uri,
    host_ip: String,
    broadcast: Option<BroadcastServer>,
    broadcast_status: BroadcastStatus,
    hmac: bool,
}

impl std::fmt::Debug for NameServerDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameServerDaemon")
            .field("uri", &self.uri.to_string())
            .field("broadcast", &self.broadcast_status)
            .finish()
    }
}

/// The address a TCP daemon bound to, resolved the way the daemon resolves its host
/// (first address of the preferred IP version). Pyro4 prints `sock.getsockname()[0]`.
async fn bound_ip(host: &str, config: &Config) -> Option<IpAddr> {
    let h = if host.is_empty() { "0.0.0.0" } else { host };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((h, 0)).await.ok()?.collect();
    match config.prefer_ip_version {
        4 => addrs.iter().find(|a| a.is_ipv4()),
        6 => addrs.iter().find(|a| a.is_ipv6()),
        _ => None,
    }
    .or_else(|| addrs.first())
    .map(|a| a.ip())
}

impl NameServerDaemon {
    /// Open the storage, bind the daemon, register `Pyro.NameServer` (in the daemon and
    /// in its own table, with metadata `class:Pyro4.naming.NameServer`) and start the
    /// broadcast responder where Pyro4 would (or where forced).
    pub async fn start(opts: NameServerOptions) -> Result<NameServerDaemon, NameServerError> {
        let config = opts.config.clone();
        if opts.natport.is_some() && opts.nathost.is_none() && config.nathost.is_none() {
            return Err(NameServerError::Config(
                "must provide natport with nathost".into(),
            ));
        }
        let spec = opts.storage.clone();
        let storage = tokio::task::spawn_blocking(move || spec.open())
            .await
            .map_err(|e| NameServerError::Config(format!("storage open task failed: {e}")))??;
        let core = Arc::new(NameServerCore::new(storage));

        let mut builder = DaemonBuilder::with_config(config.clone())
            .hmac_key(opts.hmac_key.as_deref())
            .port(opts.port.unwrap_or(config.ns_port));
        if let Some(h) = &opts.host {
            builder = builder.host(h);
        }
        if let Some(path) = &opts.unixsocket {
            builder = builder.unix_socket(path);
        }
        if let Some(h) = opts.nathost.clone().or_else(|| config.nathost.clone()) {
            if opts.unixsocket.is_none() {
                builder = builder.nat(&h, opts.natport.unwrap_or(config.natport));
            }
        }
        let daemon = builder.bind().await?;
        daemon.register(
            nameserver_object(core.clone()),
            Some(NAMESERVER_NAME),
            false,
        )?;
        let uri = daemon.uri_for(NAMESERVER_NAME);
        let internal_uri = daemon.uri_for_internal(NAMESERVER_NAME);
        {
            let core = core.clone();
            let text = uri.to_string();
            tokio::task::spawn_blocking(move || {
                core.register_entry(
                    NAMESERVER_NAME,
                    &text,
                    false,
                    vec![NAMESERVER_METADATA.to_string()],
                )
            })
            .await
            .map_err(|e| NameServerError::Register(e.to_string()))?
            .map_err(|f| NameServerError::Register(f.message()))?;
        }

        let (host_ip, ip) = match &internal_uri.location {
            Some(Location::Tcp { host, .. }) => match bound_ip(host, &config).await {
                Some(ip) => (ip.to_string(), Some(ip)),
                None => (host.clone(), None),
            },
            _ => ("Unix domain socket".to_string(), None),
        };
        let mut broadcast = None;
        let broadcast_status = if opts.unixsocket.is_some() {
            BroadcastStatus::UnixSocket
        } else if ip.is_some_and(|i| i.is_ipv6()) && !opts.force_broadcast {
            // Pyro4 checks (and reports) IPv6 and loopback before looking at `-x`;
            // "ipv6 doesn't have broadcast".
            BroadcastStatus::Ipv6
        } else if (host_ip.starts_with("127.") || host_ip == "::1") && !opts.force_broadcast {
            BroadcastStatus::Localhost
        } else if !opts.enable_broadcast {
            BroadcastStatus::Disabled
        } else {
            let bchost = opts.bchost.clone().or_else(|| config.ns_bchost.clone());
            let bcport = opts.bcport.unwrap_or(config.ns_bcport);
            let ipv6 = ip.is_some_and(|i| i.is_ipv6());
            // The responder hands out the internal URI: external systems could not
            // use it anyway (Pyro4's reasoning).
            let bc = BroadcastServer::start(internal_uri.clone(), bchost.as_deref(), bcport, ipv6)
                .await
                .map_err(NameServerError::Broadcast)?;
            let status = BroadcastStatus::Running(bc.location_str().to_string());
            broadcast = Some(bc);
            status
        };
        Ok(NameServerDaemon {
            daemon,
            core,
            uri,
            internal_uri,
            host_ip,
            broadcast,
            broadcast_status,
            hmac: opts.hmac_key.is_some_and(|k| !k.is_empty()),
        })
    }

    /// The name server's URI (with the NAT location when configured).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The URI with the bound (internal) location.
    pub fn internal_uri(&self) -> &Uri {
        &self.internal_uri
    }

    /// The daemon (register more objects, shut down ...).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// A handle to shut the name server down from elsewhere.
    pub fn handle(&self) -> DaemonHandle {
        self.daemon.handle()
    }

    /// The name server logic (direct access to the registrations).
    pub fn core(&self) -> &Arc<NameServerCore> {
        &self.core
    }

    /// The broadcast responder, if running.
    pub fn broadcast(&self) -> Option<&BroadcastServer> {
        self.broadcast.as_ref()
    }

    /// Whether a broadcast responder runs, or why not.
    pub fn broadcast_status(&self) -> &BroadcastStatus {
        &self.broadcast_status
    }

    /// What Pyro4's `startNSloop` prints before serving, line by line.
    pub async fn startup_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.broadcast_status {
            BroadcastStatus::Running(loc) => {
                lines.push(format!("Broadcast server running on {loc}"))
            }
            BroadcastStatus::Localhost => {
                lines.push("Not starting broadcast server for localhost.".into())
            }
            BroadcastStatus::Ipv6 => lines.push("Not starting broadcast server for IPv6.".into()),
            BroadcastStatus::UnixSocket | BroadcastStatus::Disabled => {}
        }
        let core = self.core.clone();
        let existing = tokio::task::spawn_blocking(move || core.count())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        // The name server's own registration is not counted.
        if existing > 1 {
            lines.push(format!(
                "Persistent store contains {existing} existing registrations."
            ));
        }
        lines.push(format!(
            "NS running on {} ({})",
            self.daemon.location_str(),
            self.host_ip
        ));
        if !self.hmac {
            lines.push("Warning: HMAC key not set. Anyone can connect to this server!".into());
        }
        if self.uri != self.internal_uri {
            lines.push(format!("internal URI = {}", self.internal_uri));
            lines.push(format!("external URI = {}", self.uri));
        } else {
            lines.push(format!("URI = {}", self.uri));
        }
        lines
    }

    /// Serve until the daemon is shut down ([`DaemonHandle::shutdown`]), then stop the
    /// broadcast responder and close the storage.
    pub async fn run(mut self) -> Result<(), NameServerError> {
        let result = self.daemon.run().await;
        if let Some(bc) = self.broadcast.take() {
            bc.close().await;
        }
        let storage = self.core.storage().clone();
        let _ = tokio::task::spawn_blocking(move || storage.close()).await;
        result.map_err(NameServerError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_specs() {
        assert_eq!(
            "memory".parse::<StorageSpec>().unwrap(),
            StorageSpec::Memory
        );
        assert_eq!(
            "sql:/tmp/x.db".parse::<StorageSpec>().unwrap(),
            StorageSpec::Sql("/tmp/x.db".into())
        );
        assert!("sql:".parse::<StorageSpec>().is_err());
        assert!("dbm:x".parse::<StorageSpec>().is_err());
        let e = "bogus".parse::<StorageSpec>().unwrap_err();
        assert_eq!(e.to_string(), "invalid storage type 'bogus'");
    }
}
