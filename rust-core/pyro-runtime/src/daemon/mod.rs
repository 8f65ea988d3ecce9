//! The Pyro4 daemon: serves registered objects to Pyro4 clients (Python's
//! `Pyro4.Daemon`), byte-compatible with Pyro4 4.82.
//!
//! - [`Daemon`]: binds TCP (IPv4/IPv6, port 0 allowed) or a Unix socket, accepts
//!   connections as tokio tasks (no thread pool, no fixed cap unless
//!   [`DaemonBuilder::max_connections`] sets one), performs Pyro4's handshake and
//!   dispatches INVOKE/PING messages to objects.
//! - [`Dispatch`]: what an object implements; [`Exposed`] builds one from a state value
//!   and closures.
//! - [`DaemonHandle`]: a cheap clone to register objects and shut the daemon down from
//!   anywhere (also reachable from a call through [`CallContext::daemon`]).
//!
//! With SSL on in its configuration (or [`DaemonBuilder::tls`]), every accepted TCP
//! connection is a TLS server connection (Pyro4's SSL mode); the TLS handshake runs on
//! the connection's own task, bounded by COMMTIMEOUT (10 s when that is 0), so a client
//! that never finishes it cannot hold up the accept loop.
//!
//! The built-in object `Pyro.Daemon` offers `ping`, `registered`, `info`,
//! `get_metadata`, `get_next_stream_item` and `close_stream`, as Pyro4's `DaemonObject`.

mod dispatch;
pub mod echo;
mod error;
mod exposed;
mod object;
mod server;
mod streams;
#[cfg(test)]
mod tests;

pub use dispatch::{
    is_private_attribute, Args, BoxFuture, CallContext, CallFuture, ClientAddr, Dispatch, Fault,
    ItemIter, Metadata, Outcome, RequestToken,
};
pub use error::DaemonError;
pub use exposed::Exposed;

use crate::config::{seconds, Config};
use crate::connection::Stream;
use pyro_codec::{SerializerKind, Value};
use pyro_wire::{Location, Uri, DAEMON_NAME};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use streams::Streams;
use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Pyro4's text for a connection refused because the server is full
/// (`SocketServer_Threadpool` with every worker busy).
pub const CONNECTION_LIMIT_REASON: &str = "no free workers, increase server threadpool size";

/// Listen backlog, as Pyro4's `createSocket(... backlog=100)`.
const BACKLOG: u32 = 100;

/// Bound on a TLS handshake when COMMTIMEOUT is 0 (Pyro4 would wait forever, inside its
/// accept loop).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A handshake validator: Pyro4's overridable `Daemon.validateHandshake(conn, data)`.
/// Returns the handshake response sent to the client, or a [`Fault`] whose message
/// becomes the CONNECTFAIL reason.
pub type HandshakeValidator = dyn Fn(&ClientAddr, &Value) -> Result<Value, Fault> + Send + Sync;

/// Objects by id, in registration order (Pyro4's `objectsById` dict).
#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<dyn Dispatch>>,
    order: Vec<String>,
}

/// Everything the accept loop, the connections and the handles share.
pub(crate) struct Shared {
    config: Arc<Config>,
    objects: RwLock<Registry>,
    /// How many registered objects decode serpent calls themselves
    /// ([`Dispatch::decodes_serpent`]); while none does, a connection skips that path.
    pub(crate) serpent_objects: AtomicUsize,
    streams: Streams,
    location: Location,
    location_str: String,
    nat_location: Option<Location>,
    hmac_key: Option<Vec<u8>>,
    accepted: Vec<SerializerKind>,
    max_connections: Option<usize>,
    active: AtomicUsize,
    next_conn_id: AtomicU64,
    validator: Option<Arc<HandshakeValidator>>,
    shutdown_tx: watch::Sender<bool>,
    /// Set when draining gave up: connections served by an executor stop at once.
    abort_tx: watch::Sender<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    executor: Option<Arc<ConnectionExecutor>>,
}

/// Where accepted connections run when not on the daemon's own runtime: called once per
/// accepted connection, from the accept loop; it must return quickly and arrange for
/// [`AcceptedConnection::serve`] to be polled (typically on a thread of its own).
pub type ConnectionExecutor = dyn Fn(AcceptedConnection) + Send + Sync;

/// The socket of an accepted connection, detached from the accept loop's runtime.
enum RawSocket {
    Tcp(std::net::TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

/// A client connection accepted by a daemon with a [`ConnectionExecutor`]. Poll
/// [`AcceptedConnection::serve`] to completion on any tokio runtime (with IO enabled):
/// the socket is registered with the runtime that polls it, so a connection served on
/// a current-thread runtime does all its IO on that runtime's thread.
pub struct AcceptedConnection {
    handle: DaemonHandle,
    socket: RawSocket,
    addr: ClientAddr,
    guard: Option<server::ActiveGuard>,
}

impl fmt::Debug for AcceptedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptedConnection")
            .field("addr", &self.addr)
            .finish()
    }
}

impl AcceptedConnection {
    /// The client's address.
    pub fn client_addr(&self) -> &ClientAddr {
        &self.addr
    }

    /// Serve the connection (TLS handshake when the daemon has TLS, Pyro handshake,
    /// requests) until it closes, the daemon shuts down, or the daemon's drain time
    /// runs out.
    pub async fn serve(self) {
        let shared = self.handle.shared.clone();
        let stream = match self.socket {
            RawSocket::Tcp(s) => tokio::net::TcpStream::from_std(s).map(Stream::Tcp),
            #[cfg(unix)]
            RawSocket::Unix(s) => tokio::net::UnixStream::from_std(s).map(Stream::Unix),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(addr = %self.addr, "cannot register an accepted socket: {e}");
                return;
            }
        };
        let mut abort = shared.abort_tx.subscribe();
        tokio::select! {
            _ = serve_accepted(self.handle, stream, self.addr, self.guard) => {}
            _ = abort.wait_for(|a| *a) => {}
        }
    }
}

/// One accepted connection: the TLS handshake first when the daemon has TLS (on the
/// connection's own task, bounded), then the Pyro connection.
async fn serve_accepted(
    handle: DaemonHandle,
    stream: Stream,
    addr: ClientAddr,
    guard: Option<server::ActiveGuard>,
) {
    match (&handle.shared.tls, stream) {
        (Some(acceptor), Stream::Tcp(tcp)) => {
            let acceptor = acceptor.clone();
            let limit = handle
                .shared
                .config
                .comm_timeout()
                .unwrap_or(TLS_HANDSHAKE_TIMEOUT);
            match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let stream = Stream::TlsServer(Box::new(tls));
                    server::serve_connection(handle, stream, addr, guard).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
        (_, stream) => server::serve_connection(handle, stream, addr, guard).await,
    }
}

/// A clone-able reference to a daemon: register objects, build URIs, shut it down.
#[derive(Clone)]
pub struct DaemonHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for DaemonHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonHandle")
            .field("location", &self.shared.location_str)
            .finish()
    }
}

impl DaemonHandle {
    /// Register an object under `id` (None: a generated `obj_<uuid4 hex>`), returning
    /// its URI. An id in use is a `DaemonError` unless `force` replaces it (Pyro4's
    /// `register(obj, objectId, force)`).
    pub fn register(
        &self,
        obj: impl Dispatch,
        id: Option<&str>,
        force: bool,
    ) -> Result<Uri, DaemonError> {
        self.register_arc(Arc::new(obj), id, force)
    }

    /// Register a shared object; see [`DaemonHandle::register`].
    pub fn register_arc(
        &self,
        obj: Arc<dyn Dispatch>,
        id: Option<&str>,
        force: bool,
    ) -> Result<Uri, DaemonError> {
        let id = match id {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!("obj_{}", uuid::Uuid::new_v4().simple()),
        };
        let mut reg = self.shared.objects.write().map_err(|_| poisoned())?;
        if reg.by_id.contains_key(&id) {
            if !force {
                return Err(DaemonError::Registration(
                    "an object or class is already registered with that id".into(),
                ));
            }
        } else {
            reg.order.push(id.clone());
        }
        let counts = usize::from(obj.decodes_serpent());
        let replaced = reg.by_id.insert(id.clone(), obj);
        let counted = replaced.map_or(0, |o| usize::from(o.decodes_serpent()));
        // Updated under the registry lock, so the count matches the registry.
        self.shared
            .serpent_objects
            .fetch_add(counts, Ordering::Relaxed);
        self.shared
            .serpent_objects
            .fetch_sub(counted, Ordering::Relaxed);
        drop(reg);
        Ok(self.uri_for(&id))
    }

    /// Remove an object. `Pyro.Daemon` cannot be removed; unknown ids are ignored (as in
    /// Pyro4).
    pub fn unregister(&self, id: &str) -> Result<(), DaemonError> {
        if id == DAEMON_NAME {
            return Err(DaemonError::Registration(
                "cannot unregister the daemon object".into(),
            ));
        }
        let mut reg = self.shared.objects.write().map_err(|_| poisoned())?;
        if let Some(obj) = reg.by_id.remove(id) {
            reg.order.retain(|o| o != id);
            if obj.decodes_serpent() {
                self.shared.serpent_objects.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// The URI for an object id: `PYRO:<id>@<NAT location or location>` (Pyro4's
    /// `uriFor(id)`; the id need not be registered).
    pub fn uri_for(&self, id: &str) -> Uri {
        let location = self
            .shared
            .nat_location
            .clone()
            .unwrap_or_else(|| self.shared.location.clone());
        Uri {
            kind: pyro_wire::UriKind::Pyro,
            object: id.to_string(),
            location: Some(location),
        }
    }

    /// The URI for an object id with the internal location, ignoring NAT.
    pub fn uri_for_internal(&self, id: &str) -> Uri {
        Uri {
            kind: pyro_wire::UriKind::Pyro,
            object: id.to_string(),
            location: Some(self.shared.location.clone()),
        }
    }

    /// The location the daemon listens on (`host:port` with the configured host name,
    /// `[ipv6]:port`, or `./u:path`), Pyro4's `locationStr`.
    pub fn location_str(&self) -> &str {
        &self.shared.location_str
    }

    /// The registered object ids, `Pyro.Daemon` first.
    pub fn registered(&self) -> Vec<String> {
        self.shared
            .objects
            .read()
            .map(|r| r.order.clone())
            .unwrap_or_default()
    }

    /// The object registered under `id`.
    pub fn object(&self, id: &str) -> Option<Arc<dyn Dispatch>> {
        self.shared.objects.read().ok()?.by_id.get(id).cloned()
    }

    /// Number of client connections being served.
    pub fn connection_count(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// True when the daemon serves TLS (Pyro4's SSL mode).
    pub fn is_tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// Number of open item streams.
    pub fn stream_count(&self) -> usize {
        self.shared.streams.len()
    }

    /// Ask the daemon to stop: it stops accepting, lets running requests finish, closes
    /// idle connections and returns from [`Daemon::run`].
    pub fn shutdown(&self) {
        let _ = self.shared.shutdown_tx.send(true);
    }

    /// True once [`DaemonHandle::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.shared.shutdown_tx.borrow()
    }

    /// Resolves when shutdown has been requested.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shared.shutdown_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Pyro4's `DaemonObject.info()` text.
    pub(crate) fn info(&self) -> String {
        let nat = match &self.shared.nat_location {
            Some(l) => crate::connection::location_text(l),
            None => "None".into(),
        };
        let n = self
            .shared
            .objects
            .read()
            .map(|r| r.order.len())
            .unwrap_or(0);
        format!(
            "{DAEMON_NAME} bound on {}, NAT {nat}, {n} objects registered. Servertype: <SocketServer_Tokio on {}; {} connections>",
            self.shared.location_str,
            self.shared.location_str,
            self.connection_count()
        )
    }
}

fn poisoned() -> DaemonError {
    DaemonError::Registration("object registry lock poisoned".into())
}

/// Where to listen.
#[derive(Debug, Clone)]
enum Bind {
    Tcp { host: String, port: u16 },
    Unix(String),
}

/// Settings for a [`Daemon`]; start with [`Daemon::builder`].
pub struct DaemonBuilder {
    config: Arc<Config>,
    bind: Bind,
    nathost: Option<String>,
    natport: Option<u16>,
    hmac_key: Option<Vec<u8>>,
    max_connections: Option<usize>,
    validator: Option<Arc<HandshakeValidator>>,
    tls: TlsChoice,
    executor: Option<Arc<ConnectionExecutor>>,
}

/// Where a daemon's TLS setting comes from.
#[derive(Clone)]
enum TlsChoice {
    /// The configuration's SSL_* items (plain when SSL is off).
    FromConfig,
    /// Given explicitly.
    Given(Arc<rustls::ServerConfig>),
    /// Plain TCP whatever the configuration says.
    Off,
}

impl DaemonBuilder {
    /// Defaults from the process-wide configuration (`PYRO_*` variables): HOST, port 0,
    /// NATHOST/NATPORT, no HMAC key, no connection limit.
    pub fn new() -> Self {
        DaemonBuilder::with_config(Arc::new(Config::global().clone()))
    }

    /// Defaults from an explicit configuration.
    pub fn with_config(config: Arc<Config>) -> Self {
        DaemonBuilder {
            bind: Bind::Tcp {
                host: config.host.clone(),
                port: 0,
            },
            nathost: config.nathost.clone(),
            natport: None,
            hmac_key: None,
            max_connections: None,
            validator: None,
            tls: TlsChoice::FromConfig,
            executor: None,
            config,
        }
    }

    /// Serve TLS with this rustls configuration (instead of the configuration's SSL_*
    /// items); see [`crate::tls::server_config`] to build one from SSL_* settings.
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = TlsChoice::Given(tls);
        self
    }

    /// Run accepted connections with `executor` instead of as tasks of the runtime that
    /// runs [`Daemon::run`] (see [`AcceptedConnection`]). Shutdown still drains them:
    /// `run` waits until they have closed, at most the drain timeout, then stops them.
    pub fn connection_executor<F>(mut self, executor: F) -> Self
    where
        F: Fn(AcceptedConnection) + Send + Sync + 'static,
    {
        self.executor = Some(Arc::new(executor));
        self
    }

    /// Serve plain TCP even when the configuration has SSL on.
    pub fn no_tls(mut self) -> Self {
        self.tls = TlsChoice::Off;
        self
    }

    /// Bind host (kept as given for the URIs, like Pyro4's `locationStr`).
    pub fn host(mut self, host: &str) -> Self {
        let port = match &self.bind {
            Bind::Tcp { port, .. } => *port,
            Bind::Unix(_) => 0,
        };
        self.bind = Bind::Tcp {
            host: host.to_string(),
            port,
        };
        self
    }

    /// Bind port (0 = chosen by the OS).
    pub fn port(mut self, port: u16) -> Self {
        let host = match &self.bind {
            Bind::Tcp { host, .. } => host.clone(),
            Bind::Unix(_) => self.config.host.clone(),
        };
        self.bind = Bind::Tcp { host, port };
        self
    }

    /// Listen on a Unix domain socket instead of TCP (a leading NUL byte names a Linux
    /// abstract socket). An existing socket file is replaced, as Pyro4 does.
    pub fn unix_socket(mut self, path: &str) -> Self {
        self.bind = Bind::Unix(path.to_string());
        self
    }

    /// Advertise another host (and port; 0 = the bound port) in URIs (NATHOST/NATPORT).
    pub fn nat(mut self, host: &str, port: u16) -> Self {
        self.nathost = Some(host.to_string());
        self.natport = Some(port);
        self
    }

    /// Shared HMAC key (Pyro4's `daemon._pyroHmacKey`); None or empty = no HMAC.
    pub fn hmac_key(mut self, key: Option<&[u8]>) -> Self {
        self.hmac_key = key.filter(|k| !k.is_empty()).map(<[u8]>::to_vec);
        self
    }

    /// Refuse connections beyond this many with CONNECTFAIL (Pyro4's THREADPOOL_SIZE
    /// behaviour). None = no limit.
    pub fn max_connections(mut self, limit: Option<usize>) -> Self {
        self.max_connections = limit;
        self
    }

    /// Custom handshake validation (Pyro4's `validateHandshake` override).
    pub fn handshake_validator<F>(mut self, f: F) -> Self
    where
        F: Fn(&ClientAddr, &Value) -> Result<Value, Fault> + Send + Sync + 'static,
    {
        self.validator = Some(Arc::new(f));
        self
    }

    /// Create the listening socket and the daemon (with its `Pyro.Daemon` object).
    pub async fn bind(self) -> Result<Daemon, DaemonError> {
        let config = self.config;
        let mut accepted = Vec::new();
        for name in &config.serializers_accepted {
            match SerializerKind::from_name(name) {
                Some(k) if k.is_supported() => {
                    if !accepted.contains(&k) {
                        accepted.push(k);
                    }
                }
                // Pyro4 silently skips serializers that are not installed; msgpack is
                // not available in Rust (the pickle family is, through pyro-codec).
                _ => {
                    tracing::warn!("serializer {name:?} is not available and will not be accepted")
                }
            }
        }
        // Pyro4 builds its SSL context when the server socket is created; a broken
        // SSL setup is a bind error here too, never a silent fall-back to plain TCP.
        let tls = match self.tls {
            TlsChoice::Off => None,
            TlsChoice::Given(c) => Some(c),
            TlsChoice::FromConfig if config.ssl => Some(
                crate::tls::server_config(&config)
                    .map_err(|e| DaemonError::Config(format!("SSL: {e}")))?,
            ),
            TlsChoice::FromConfig => None,
        };
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let natport_cfg = self.natport.unwrap_or(config.natport);
        let (listener, location, location_str) = match &self.bind {
            Bind::Tcp { host, port } => {
                let l = bind_tcp(host, *port, &config).await?;
                let actual = l.local_addr().map_err(|e| bind_err(host, *port, e))?;
                // Pyro4: `host or sockname[0]`, the configured text as given.
                let shown = if host.is_empty() {
                    actual.ip().to_string()
                } else {
                    host.clone()
                };
                let loc = Location::Tcp {
                    host: shown,
                    port: actual.port(),
                };
                let text = crate::connection::location_text(&loc);
                (Listener::Tcp(l), loc, text)
            }
            #[cfg(unix)]
            Bind::Unix(path) => {
                if self.nathost.is_some() {
                    return Err(DaemonError::Config(
                        "cannot use nathost together with unixsocket".into(),
                    ));
                }
                let l = bind_unix(path)?;
                let loc = Location::Unix(path.clone());
                let text = crate::connection::location_text(&loc);
                (Listener::Unix(l, path.clone()), loc, text)
            }
            #[cfg(not(unix))]
            Bind::Unix(_) => {
                return Err(DaemonError::Config(
                    "unix domain sockets are not supported here".into(),
                ));
            }
        };
        let nat_location = match (&self.nathost, &location) {
            (Some(h), Location::Tcp { port, .. }) => Some(Location::Tcp {
                host: h.clone(),
                port: if natport_cfg == 0 { *port } else { natport_cfg },
            }),
            _ => None,
        };
        let (shutdown_tx, _) = watch::channel(false);
        let (abort_tx, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            objects: RwLock::new(Registry::default()),
            serpent_objects: AtomicUsize::new(0),
            streams: Streams::default(),
            location,
            location_str,
            nat_location,
            hmac_key: self.hmac_key,
            accepted,
            max_connections: self.max_connections,
            active: AtomicUsize::new(0),
            next_conn_id: AtomicU64::new(1),
            validator: self.validator,
            shutdown_tx,
            abort_tx,
            tls,
            executor: self.executor,
        });
        let handle = DaemonHandle { shared };
        let daemon_object = object::DaemonObject::new(Arc::downgrade(&handle.shared));
        handle.register(daemon_object, Some(DAEMON_NAME), true)?;
        Ok(Daemon {
            handle,
            listener: Mutex::new(Some(listener)),
            drain_timeout: Duration::from_secs(10),
        })
    }
}

impl Default for DaemonBuilder {
    fn default() -> Self {
        DaemonBuilder::new()
    }
}

fn bind_err(host: &str, port: u16, source: std::io::Error) -> DaemonError {
    let loc = crate::connection::location_text(&Location::Tcp {
        host: host.to_string(),
        port,
    });
    DaemonError::Bind {
        location: loc,
        source,
    }
}

/// Resolve and bind like Pyro4's `createSocket(bind=(host, port))`: the first address
/// of the preferred IP version, SO_REUSEADDR per SOCK_REUSE, backlog 100.
async fn bind_tcp(host: &str, port: u16, config: &Config) -> Result<TcpListener, DaemonError> {
    let lookup_host = if host.is_empty() { "0.0.0.0" } else { host };
    // A bracketed IPv6 literal is accepted as well.
    let lookup_host = lookup_host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((lookup_host, port))
        .await
        .map_err(|e| bind_err(host, port, e))?
        .collect();
    let pick = match config.prefer_ip_version {
        4 => addrs.iter().find(|a| a.is_ipv4()),
        6 => addrs.iter().find(|a| a.is_ipv6()),
        _ => None,
    }
    .or_else(|| addrs.first())
    .copied()
    .ok_or_else(|| {
        bind_err(
            host,
            port,
            std::io::Error::new(std::io::ErrorKind::NotFound, "host has no address"),
        )
    })?;
    let socket = if pick.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| bind_err(host, port, e))?;
    if config.sock_reuse {
        socket
            .set_reuseaddr(true)
            .map_err(|e| bind_err(host, port, e))?;
    }
    socket.bind(pick).map_err(|e| bind_err(host, port, e))?;
    socket.listen(BACKLOG).map_err(|e| bind_err(host, port, e))
}

#[cfg(unix)]
fn bind_unix(path: &str) -> Result<UnixListener, DaemonError> {
    let err = |e| DaemonError::Bind {
        location: format!("./u:{path}"),
        source: e,
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = path.strip_prefix('\0') {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?;
        let std_l = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(err)?;
        std_l.set_nonblocking(true).map_err(err)?;
        return UnixListener::from_std(std_l).map_err(err);
    }
    // Pyro4 removes a stale socket file before binding.
    if std::fs::symlink_metadata(path).is_ok() {
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(err)
}

enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, String),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(Stream, ClientAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                // Every reply goes out in one write; Nagle would only add latency.
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), ClientAddr::Tcp(addr)))
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => {
                let (s, addr) = l.accept().await?;
                let name = addr.as_pathname().map(|p| p.display().to_string());
                Ok((Stream::Unix(s), ClientAddr::Unix(name)))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Pyro4 removes its socket file when the daemon closes.
        #[cfg(unix)]
        if let Listener::Unix(_, path) = self {
            if !path.starts_with('\0') {
                let _ = std::fs::remove_file(path.as_str());
            }
        }
    }
}

/// A bound Pyro4 daemon. Register objects (through `Deref` to [`DaemonHandle`]), then
/// [`Daemon::run`] it.
pub struct Daemon {
    handle: DaemonHandle,
    listener: Mutex<Option<Listener>>,
    drain_timeout: Duration,
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("location", &self.handle.shared.location_str)
            .finish()
    }
}

impl std::ops::Deref for Daemon {
    type Target = DaemonHandle;
    fn deref(&self) -> &DaemonHandle {
        &self.handle
    }
}

impl Daemon {
    /// Settings from the process-wide configuration.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::new()
    }

    /// Bind on `host:port` with the process-wide configuration.
    pub async fn bind(host: &str, port: u16) -> Result<Daemon, DaemonError> {
        DaemonBuilder::new().host(host).port(port).bind().await
    }

    /// A handle for registering objects and shutting down from elsewhere.
    pub fn handle(&self) -> DaemonHandle {
        self.handle.clone()
    }

    /// How long [`Daemon::run`] waits for running requests after shutdown before it
    /// aborts them (default 10 s).
    pub fn set_drain_timeout(&mut self, timeout: Duration) {
        self.drain_timeout = timeout;
    }

    /// Serve until [`DaemonHandle::shutdown`]: accept connections (one task each), run
    /// housekeeping (stream lifetime and linger), then drain: stop accepting, let
    /// running requests finish within the drain timeout, close every connection.
    pub async fn run(&self) -> Result<(), DaemonError> {
        let listener = self
            .listener
            .lock()
            .map_err(|_| DaemonError::AlreadyRunning)?
            .take()
            .ok_or(DaemonError::AlreadyRunning)?;
        let shared = self.handle.shared.clone();
        let mut shutdown = shared.shutdown_tx.subscribe();
        let housekeeper = tokio::spawn(housekeeping(self.handle.clone()));
        let mut tasks = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        while tasks.try_join_next().is_some() {}
                        let over = shared
                            .max_connections
                            .is_some_and(|max| shared.active.load(Ordering::Relaxed) >= max);
                        let handle = self.handle.clone();
                        tracing::debug!(%addr, over, "connection accepted");
                        // Counted here, before the task runs, so a burst of connects
                        // cannot slip past the limit.
                        let guard = if over { None } else { Some(server::ActiveGuard::new(&shared)) };
                        match &shared.executor {
                            Some(exec) => match raw_socket(stream) {
                                Ok(socket) => exec(AcceptedConnection { handle, socket, addr, guard }),
                                Err(e) => tracing::warn!(%addr, "cannot hand over a connection: {e}"),
                            },
                            None => {
                                tasks.spawn(serve_accepted(handle, stream, addr, guard));
                            }
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => {}
            }
        }
        drop(listener);
        housekeeper.abort();
        let drained = tokio::time::timeout(self.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
            if shared.executor.is_some() {
                // Connections run elsewhere: they end on the shutdown signal after their
                // current request, which the connection count shows.
                while shared.active.load(Ordering::Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .await;
        if drained.is_err() {
            let _ = shared.abort_tx.send(true);
        }
        if drained.is_err() {
            tracing::warn!(
                "daemon shutdown: aborting {} connections still busy",
                tasks.len()
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        Ok(())
    }
}

/// A tokio socket as a std one, for a runtime elsewhere to register.
fn raw_socket(stream: Stream) -> std::io::Result<RawSocket> {
    match stream {
        Stream::Tcp(s) => s.into_std().map(RawSocket::Tcp),
        #[cfg(unix)]
        Stream::Unix(s) => s.into_std().map(RawSocket::Unix),
        _ => Err(std::io::Error::other("only plain sockets are accepted")),
    }
}

/// Periodic clean-up of item streams (Pyro4's `_housekeeping`, every POLLTIMEOUT).
async fn housekeeping(handle: DaemonHandle) {
    let config = &handle.shared.config;
    let every = seconds(config.polltimeout)
        .unwrap_or(Duration::from_secs(2))
        .max(Duration::from_millis(100));
    let lifetime = seconds(config.iter_stream_lifetime);
    let linger = seconds(config.iter_stream_linger);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.shared.streams.expire(lifetime, linger);
    }
}
