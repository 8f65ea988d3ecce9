//! Errors of daemon setup and registration (what Pyro4 raises locally as
//! `DaemonError`, `ValueError` or a socket error). Errors of remote calls are
//! [`super::Fault`]s sent to the client instead.

/// A daemon could not be created, or an object could not be (un)registered.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The listening socket could not be created or bound.
    #[error("cannot bind daemon on {location}: {source}")]
    Bind {
        /// What was being bound (`host:port` or `./u:path`).
        location: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An invalid combination of settings (Pyro4 raises ValueError for these).
    #[error("{0}")]
    Config(String),
    /// Pyro4's `DaemonError` for registrations: duplicate id, unknown id, removing
    /// `Pyro.Daemon`.
    #[error("{0}")]
    Registration(String),
    /// `run` was called twice.
    #[error("the daemon is already running or has run")]
    AlreadyRunning,
}
