//! Errors of the runtime, mirroring the tree of `Pyro4.errors`.
//!
//! Pyro4's hierarchy:
//! ```text
//! PyroError
//! +-- CommunicationError
//! |   +-- ConnectionClosedError
//! |   +-- TimeoutError
//! |   +-- ProtocolError
//! |       +-- MessageTooLargeError
//! |       +-- SerializeError
//! +-- NamingError
//! +-- DaemonError
//! +-- SecurityError
//! ```
//! [`Error::Remote`] carries an exception raised on the other side (any class, builtin or
//! Pyro4's), with its args and remote traceback.

use pyro_codec::envelope::RemoteException;
use pyro_codec::Value;
use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime. The message texts follow Pyro4's where
/// Pyro4 has one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Pyro4's generic `PyroError`.
    #[error("{0}")]
    Pyro(String),
    /// `CommunicationError`: network problems, rejected connections.
    #[error("{0}")]
    Communication(String),
    /// `ConnectionClosedError`: the peer closed the connection.
    #[error("{0}")]
    ConnectionClosed(String),
    /// `TimeoutError`: a connect or call did not complete in time.
    #[error("{0}")]
    Timeout(String),
    /// `ProtocolError`: bytes that do not follow the Pyro protocol.
    #[error("{0}")]
    Protocol(String),
    /// `MessageTooLargeError`: a message over MAX_MESSAGE_SIZE.
    #[error("{0}")]
    MessageTooLarge(String),
    /// `NamingError`: name server problems (not found, cannot locate).
    #[error("{0}")]
    Naming(String),
    /// `DaemonError`.
    #[error("{0}")]
    Daemon(String),
    /// `SecurityError`: HMAC mismatch or asymmetric HMAC configuration.
    #[error("{0}")]
    Security(String),
    /// `SerializeError`: a payload that could not be encoded or decoded.
    #[error("{0}")]
    Serialize(String),
    /// Python's `AttributeError`, raised locally by a proxy that knows the remote
    /// object's metadata (Pyro4 does the same client-side check).
    #[error("{0}")]
    Attribute(String),
    /// Python's `ValueError` for a bad configuration value (Pyro4 raises it while
    /// reading PYRO_* variables).
    #[error("{0}")]
    Config(String),
    /// An exception raised by the remote object (or the remote daemon).
    #[error("{}", display_remote(.0))]
    Remote(Box<RemoteException>),
}

fn display_remote(e: &RemoteException) -> String {
    format!("{}: {}", e.class_name, e.message())
}

/// Short names of the Pyro4 error classes that derive from `CommunicationError`.
const COMMUNICATION_CLASSES: &[&str] = &[
    "CommunicationError",
    "ConnectionClosedError",
    "TimeoutError",
    "ProtocolError",
    "MessageTooLargeError",
    "SerializeError",
];

impl Error {
    /// The Pyro4 (or Python builtin) class name this error corresponds to, without
    /// module: `"CommunicationError"`, `"NamingError"`, ... For [`Error::Remote`] the
    /// remote class name with its module stripped (`"builtins.ValueError"` gives
    /// `"ValueError"`).
    pub fn class_name(&self) -> &str {
        match self {
            Error::Pyro(_) => "PyroError",
            Error::Communication(_) => "CommunicationError",
            Error::ConnectionClosed(_) => "ConnectionClosedError",
            Error::Timeout(_) => "TimeoutError",
            Error::Protocol(_) => "ProtocolError",
            Error::MessageTooLarge(_) => "MessageTooLargeError",
            Error::Naming(_) => "NamingError",
            Error::Daemon(_) => "DaemonError",
            Error::Security(_) => "SecurityError",
            Error::Serialize(_) => "SerializeError",
            Error::Attribute(_) => "AttributeError",
            Error::Config(_) => "ValueError",
            Error::Remote(r) => short_class_name(&r.class_name),
        }
    }

    /// Module-qualified class name as Python would report it: `Pyro4.errors.X` for the
    /// Pyro4 errors, `builtins.X` for the builtin ones, the remote name for remote ones.
    pub fn qualified_class_name(&self) -> String {
        match self {
            Error::Attribute(_) | Error::Config(_) => format!("builtins.{}", self.class_name()),
            Error::Remote(r) => r.class_name.clone(),
            _ => format!("Pyro4.errors.{}", self.class_name()),
        }
    }

    /// True when Pyro4 would raise a `CommunicationError` (or subclass) here. Such an
    /// error makes a proxy drop its connection, so the next call reconnects (Pyro4's
    /// `_pyroInvoke` does the same). A remote exception counts when its class is one of
    /// Pyro4's communication errors.
    pub fn is_communication_error(&self) -> bool {
        match self {
            Error::Communication(_)
            | Error::ConnectionClosed(_)
            | Error::Timeout(_)
            | Error::Protocol(_)
            | Error::MessageTooLarge(_)
            | Error::Serialize(_) => true,
            Error::Remote(r) => {
                is_pyro_errors_class(&r.class_name)
                    && COMMUNICATION_CLASSES.contains(&short_class_name(&r.class_name))
            }
            _ => false,
        }
    }

    /// True for the errors Pyro4's MAX_RETRIES retries: `ConnectionClosedError` and
    /// `TimeoutError`.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionClosed(_) | Error::Timeout(_))
    }

    /// The remote exception, if this is one.
    pub fn remote(&self) -> Option<&RemoteException> {
        match self {
            Error::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// The remote traceback text, if this is a remote exception that carried one.
    pub fn remote_traceback(&self) -> Option<String> {
        self.remote().and_then(|r| r.traceback())
    }

    /// The exception args: the remote ones, or the message as a 1-tuple for local
    /// errors (as Python's `exc.args`).
    pub fn args(&self) -> Vec<Value> {
        match self {
            Error::Remote(r) => r.args.clone(),
            other => vec![Value::Str(other.to_string())],
        }
    }

    /// Wrap a remote exception.
    pub fn remote_exception(e: RemoteException) -> Error {
        Error::Remote(Box::new(e))
    }
}

/// `"builtins.ValueError"` gives `"ValueError"`.
fn short_class_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn is_pyro_errors_class(name: &str) -> bool {
    // Pyro4 daemons send "Pyro4.errors.X"; Pyrolite and Rust daemons may send bare names.
    name.starts_with("Pyro4.errors.") || name.starts_with("Pyro5.errors.") || !name.contains('.')
}

impl From<pyro_wire::Error> for Error {
    fn from(e: pyro_wire::Error) -> Error {
        use pyro_wire::Error as W;
        match e {
            W::HmacMismatch | W::HmacNotSymmetric => Error::Security(e.to_string()),
            W::MessageTooLarge { .. } | W::AnnotationsTooLarge(_) => {
                Error::MessageTooLarge(e.to_string())
            }
            // Pyro4 raises a plain PyroError for a malformed URI.
            W::InvalidUri(msg) => Error::Pyro(msg),
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl From<pyro_codec::Error> for Error {
    fn from(e: pyro_codec::Error) -> Error {
        Error::Serialize(e.to_string())
    }
}

/// Map an IO error the way Pyro4's socketutil does: a closed or reset peer is a
/// `ConnectionClosedError`, a socket timeout a `TimeoutError`, anything else a
/// `CommunicationError`. `context` is prefixed like Pyro4's "receiving: ..." texts.
pub(crate) fn from_io(context: &str, e: std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            Error::ConnectionClosed(format!("{context}: connection lost: {e}"))
        }
        K::TimedOut | K::WouldBlock => Error::Timeout(format!("{context}: timeout")),
        _ => Error::Communication(format!("{context}: {e}")),
    }
}

/// Displays a [`Value`] roughly as Python's `str()` would, for error texts built from
/// peer data (a str is shown bare, anything else in its debug form).
pub(crate) struct PyStr<'a>(pub &'a Value);

impl fmt::Display for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Str(s) => f.write_str(s),
            Value::Bytes(b) => write!(f, "{}", String::from_utf8_lossy(b)),
            Value::None => f.write_str("None"),
            Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_follow_pyro4() {
        assert_eq!(Error::Timeout("x".into()).class_name(), "TimeoutError");
        assert_eq!(
            Error::Serialize("x".into()).qualified_class_name(),
            "Pyro4.errors.SerializeError"
        );
        let remote = Error::remote_exception(RemoteException::new(
            "builtins.ValueError",
            vec![Value::str("bad")],
        ));
        assert_eq!(remote.class_name(), "ValueError");
        assert!(!remote.is_communication_error());
        let remote_comm =
            Error::remote_exception(RemoteException::new("Pyro4.errors.SerializeError", vec![]));
        assert!(remote_comm.is_communication_error());
        assert!(Error::Timeout(String::new()).is_retryable());
        assert!(!Error::Protocol(String::new()).is_retryable());
    }

    #[test]
    fn wire_errors_map_to_pyro_classes() {
        assert_eq!(
            Error::from(pyro_wire::Error::HmacMismatch).class_name(),
            "SecurityError"
        );
        assert_eq!(
            Error::from(pyro_wire::Error::ChecksumMismatch).class_name(),
            "ProtocolError"
        );
        assert_eq!(
            Error::from(pyro_wire::Error::MessageTooLarge { size: 5, limit: 1 }).class_name(),
            "MessageTooLargeError"
        );
    }
}
