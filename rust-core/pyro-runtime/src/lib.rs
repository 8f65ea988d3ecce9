//! Tokio runtime for pyro-rs: connection framing, the Proxy (async and blocking), name
//! server location and PYRO_* configuration.
//!
//! - [`Proxy`]: Pyro4's client proxy (handshake, metadata, calls, oneway, attributes,
//!   batches, item streams, timeouts, retries, HMAC, PYRONAME/PYROMETA resolution).
//! - [`naming`]: `locate_ns` (direct and UDP broadcast) and the typed [`NameServer`].
//! - [`blocking`]: the same with a private current-thread runtime.
//! - [`Connection`]: whole messages over TCP or Unix sockets with a reusable buffer.
//! - [`Config`]: every Pyro4 4.82 item, with PYRO_* environment conversion.
//! - [`Error`]: Pyro4's error tree plus remote exceptions.
//! - [`daemon`]: the server side: [`Daemon`] serving [`Dispatch`] objects to Pyro4 clients.
//! - [`nameserver`]: the name server ([`NameServerDaemon`]), storage and broadcast responder.
//! - [`tls`]: TLS on rustls, Pyro4's SSL mode (SSL_* config items).

pub mod blocking;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod error;
pub mod nameserver;
pub mod naming;
pub mod proxy;
pub mod tls;

pub use config::Config;
pub use connection::{Connection, Stream};
pub use daemon::{Daemon, DaemonBuilder, DaemonHandle, Dispatch, Exposed, Fault};
pub use error::{Error, Result};
pub use nameserver::{NameServerDaemon, NameServerOptions, StorageSpec};
pub use naming::{locate_ns, locate_ns_with, ListFilter, NameServer, Registration};
pub use proxy::{Batch, ItemStream, Proxy, Reply};
