//! Pyro URIs: `PYRO:obj@host:port`, `PYRO:obj@[::1]:port`, `PYRO:obj@./u:path`,
//! `PYRONAME:name[@host[:port]]`, `PYROMETA:tag1,tag2[@host[:port]]`.

use crate::Result;
use std::fmt;

/// Which kind of URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UriKind {
    /// `PYRO:` a direct object reference.
    Pyro,
    /// `PYRONAME:` a name to look up in the name server.
    PyroName,
    /// `PYROMETA:` a set of metadata tags to look up in the name server.
    PyroMeta,
}

/// Where an object (or a name server) is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// TCP host (IPv6 without brackets) and port.
    Tcp {
        /// Host name or address as written.
        host: String,
        /// Port.
        port: u16,
    },
    /// Unix domain socket path.
    Unix(String),
}

/// A parsed Pyro URI. `object` is the object id, the name, or for PYROMETA the tags
/// joined as written (see [`Uri::meta_tags`]). `location` is None for a PYRONAME/PYROMETA
/// without location (name server discovery).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uri {
    /// Protocol.
    pub kind: UriKind,
    /// Object id or name; for PYROMETA the stripped tags in order, joined by ','.
    pub object: String,
    /// Location, if given.
    pub location: Option<Location>,
}

impl Uri {
    /// Parse following Pyro4's grammar; `ns_port` is the port used for a PYRONAME/PYROMETA
    /// location given without one (Pyro4's NS_PORT, normally 9090).
    pub fn parse_with_ns_port(text: &str, ns_port: u16) -> Result<Uri> {
        todo!("{text}{ns_port}")
    }
    /// Parse with NS_PORT 9090.
    pub fn parse(text: &str) -> Result<Uri> {
        Self::parse_with_ns_port(text, 9090)
    }
    /// A `PYRO:` URI for an object at a TCP location.
    pub fn pyro_tcp(object: &str, host: &str, port: u16) -> Uri {
        Uri { kind: UriKind::Pyro, object: object.to_string(), location: Some(Location::Tcp { host: host.to_string(), port }) }
    }
    /// Tags of a PYROMETA URI.
    pub fn meta_tags(&self) -> Vec<String> {
        todo!()
    }
    /// The location rendered as Pyro4 does (`host:port`, `[ipv6]:port`, `./u:path`).
    pub fn location_str(&self) -> Option<String> {
        todo!()
    }
    /// Pyro4's 5-tuple state: (protocol, object, sockname, host, port) as strings/ints.
    pub fn protocol_str(&self) -> &'static str {
        todo!()
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::str::FromStr for Uri {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Uri> {
        Uri::parse(s)
    }
}
