//! Pyro URIs: `PYRO:obj@host:port`, `PYRO:obj@[::1]:port`, `PYRO:obj@./u:path`,
//! `PYRONAME:name[@host[:port]]`, `PYROMETA:tag1,tag2[@host[:port]]`.
//!
//! Parsing follows `Pyro4.core.URI` exactly, without a regex engine: the grammar is
//! `^([Pp][Yy][Rr][Oo][a-zA-Z]*):(\S+?)(@(.+))?$` (Python `re.match`, so `$` also matches
//! before one trailing newline), then `URI._parseLocation`. Known deviations, all on input
//! Pyro4 accepts but could never connect with: ports must fit in a u16, and only ASCII
//! digits count as digits (Python's `\d` and `int()` also take other Unicode digits).

use crate::{Error, Result};
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

impl UriKind {
    /// The protocol as Pyro4 writes it (upper case).
    pub fn as_str(&self) -> &'static str {
        match self {
            UriKind::Pyro => "PYRO",
            UriKind::PyroName => "PYRONAME",
            UriKind::PyroMeta => "PYROMETA",
        }
    }

    /// Kind for a protocol name, compared case-insensitively like Pyro4's `.upper()`.
    pub fn from_protocol(protocol: &str) -> Option<UriKind> {
        match protocol.to_ascii_uppercase().as_str() {
            "PYRO" => Some(UriKind::Pyro),
            "PYRONAME" => Some(UriKind::PyroName),
            "PYROMETA" => Some(UriKind::PyroMeta),
            _ => None,
        }
    }
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

/// Pyro4's URI state tuple `(protocol, object, sockname, host, port)`, which is what its
/// serializers put in the `state` of a `Pyro4.core.URI` class dict. For PYROMETA Pyro4's
/// `object` is a set of tags: use [`Uri::meta_tags`] for its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriState<'a> {
    /// `PYRO`, `PYRONAME` or `PYROMETA`.
    pub protocol: &'static str,
    /// Object id or name (for PYROMETA, the tags joined by ',').
    pub object: &'a str,
    /// Unix socket path, or None.
    pub sockname: Option<&'a str>,
    /// TCP host (may be empty, as Pyro4 allows), or None.
    pub host: Option<&'a str>,
    /// TCP port, or None.
    pub port: Option<u16>,
}

/// `str.isspace()` / `re` `\s` of Python 3: Unicode White_Space plus the four ASCII
/// separators U+001C..U+001F, which Python counts and Rust does not.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn invalid(text: &str) -> Error {
    Error::InvalidUri(text.to_string())
}

/// Whitespace that Python's `int(str)` skips around the digits: non-ASCII characters
/// that are `isspace()` become spaces first, but of ASCII only `" \t\n\v\f\r"` counts
/// (so U+001C..U+001F, whitespace to `str.isspace()`, make `int()` fail).
fn py_int_space(c: char) -> bool {
    py_isspace(c) && !('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `int(text)` for a port, limited to ASCII digits and the u16 range.
fn parse_port(text: &str) -> Result<u16> {
    let bad = || Error::InvalidUri(format!("invalid port in uri, port={text}"));
    let t = text.trim_matches(py_int_space);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // int() allows single underscores between digits ("9_090").
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(bad());
    }
    let mut value: u32 = 0;
    for b in digits.bytes().filter(u8::is_ascii_digit) {
        value = value.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    }
    if negative && value != 0 {
        return Err(bad());
    }
    u16::try_from(value).map_err(|_| bad())
}

/// `URI._parseLocation`: `default_port` is NS_PORT for PYRONAME/PYROMETA, None for PYRO.
fn parse_location(location: &str, default_port: Option<u16>) -> Result<Location> {
    if let Some(sockname) = location.strip_prefix("./u:") {
        if sockname.is_empty() || sockname.contains(':') {
            return Err(invalid("invalid uri (location)"));
        }
        return Ok(Location::Unix(sockname.to_string()));
    }
    let (host, port) = if let Some(inner) = location.strip_prefix('[') {
        if inner.starts_with('[') {
            return Err(invalid(
                "invalid ipv6 address: enclosed in too many brackets",
            ));
        }
        // re.match(r"\[([0-9a-fA-F:%]+)](:(\d+))?", location): anchored at the start only,
        // so anything after the match is ignored, as in Pyro4.
        let end = inner
            .find(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '%'))
            .unwrap_or(inner.len());
        if end == 0 || !inner[end..].starts_with(']') {
            return Err(invalid(
                "invalid ipv6 address: the part between brackets must be a numeric ipv6 address",
            ));
        }
        let after = &inner[end + 1..];
        let port = after.strip_prefix(':').and_then(|p| {
            let n = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            (n > 0).then(|| &p[..n])
        });
        (&inner[..end], port)
    } else {
        // location.partition(":"): split at the first colon.
        match location.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (location, None),
        }
    };
    // `if not self.port: self.port = defaultPort`, then int(self.port).
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => parse_port(p)?,
        None => default_port.ok_or_else(|| invalid("invalid port in uri, port=None"))?,
    };
    Ok(Location::Tcp {
        host: host.to_string(),
        port,
    })
}

/// The regex part of Pyro4's parse: (protocol as written, object, location).
fn match_grammar(text: &str) -> Option<(&str, &str, Option<&str>)> {
    let colon = text.find(|c: char| !c.is_ascii_alphabetic())?;
    let protocol = &text[..colon];
    if protocol.len() < 4
        || !protocol[..4].eq_ignore_ascii_case("pyro")
        || !text[colon..].starts_with(':')
    {
        return None;
    }
    let s = &text[colon + 1..];
    // `$` matches at the end, or just before a newline that ends the string.
    let end_ok = |p: usize| p == s.len() || (p + 1 == s.len() && s.as_bytes()[p] == b'\n');
    // `.+` stops at the first newline, which lies beyond any object prefix since `\S`
    // excludes newlines; the location then runs to that newline (or the end).
    let first_nl = s.find('\n');
    let loc_end = first_nl.unwrap_or(s.len());
    // Non-greedy `\S+?`: the shortest object after which the rest matches.
    for (i, c) in s.char_indices() {
        if py_isspace(c) {
            return None;
        }
        let k = i + c.len_utf8();
        if s[k..].starts_with('@') && loc_end > k + 1 && end_ok(loc_end) {
            return Some((protocol, &s[..k], Some(&s[k + 1..loc_end])));
        }
        if end_ok(k) {
            return Some((protocol, &s[..k], None));
        }
    }
    None
}

impl Uri {
    /// Parse following Pyro4's grammar; `ns_port` is the port used for a PYRONAME/PYROMETA
    /// location given without one (Pyro4's NS_PORT, normally 9090).
    pub fn parse_with_ns_port(text: &str, ns_port: u16) -> Result<Uri> {
        let (protocol, object, location) =
            match_grammar(text).ok_or_else(|| invalid("invalid uri"))?;
        let kind =
            UriKind::from_protocol(protocol).ok_or_else(|| invalid("invalid uri (protocol)"))?;
        let (object, default_port) = match kind {
            UriKind::Pyro => {
                if location.is_none() {
                    return Err(invalid("invalid uri"));
                }
                (object.to_string(), None)
            }
            UriKind::PyroName => (object.to_string(), Some(ns_port)),
            UriKind::PyroMeta => {
                // set(m.strip() for m in object.split(",")): keep first occurrences in order.
                let mut tags: Vec<&str> = Vec::new();
                for tag in object.split(',').map(|t| t.trim_matches(py_isspace)) {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                (tags.join(","), Some(ns_port))
            }
        };
        // Pyro4 skips an empty location (`if not location: return`); the grammar never
        // yields one, as `.+` needs a character.
        let location = location
            .map(|l| parse_location(l, default_port))
            .transpose()?;
        Ok(Uri {
            kind,
            object,
            location,
        })
    }
    /// Parse with NS_PORT 9090.
    pub fn parse(text: &str) -> Result<Uri> {
        Self::parse_with_ns_port(text, 9090)
    }
    /// A `PYRO:` URI for an object at a TCP location.
    pub fn pyro_tcp(object: &str, host: &str, port: u16) -> Uri {
        Uri {
            kind: UriKind::Pyro,
            object: object.to_string(),
            location: Some(Location::Tcp {
                host: host.to_string(),
                port,
            }),
        }
    }
    /// A `PYRO:` URI for an object behind a Unix domain socket.
    pub fn pyro_unix(object: &str, sockname: &str) -> Uri {
        Uri {
            kind: UriKind::Pyro,
            object: object.to_string(),
            location: Some(Location::Unix(sockname.to_string())),
        }
    }
    /// Rebuild a URI from Pyro4's state tuple (as found in a serialized `Pyro4.core.URI`);
    /// for PYROMETA pass the tags joined by ','. A sockname wins over host/port; a host
    /// needs a port, and PYRO needs a location.
    pub fn from_state(
        protocol: &str,
        object: &str,
        sockname: Option<&str>,
        host: Option<&str>,
        port: Option<i64>,
    ) -> Result<Uri> {
        let kind =
            UriKind::from_protocol(protocol).ok_or_else(|| invalid("invalid uri (protocol)"))?;
        let location = match (sockname, host, port) {
            (Some(s), _, _) => Some(Location::Unix(s.to_string())),
            (None, Some(h), Some(p)) => {
                let port = u16::try_from(p)
                    .map_err(|_| Error::InvalidUri(format!("invalid port in uri, port={p}")))?;
                Some(Location::Tcp {
                    host: h.to_string(),
                    port,
                })
            }
            (None, Some(_), None) => return Err(invalid("invalid port in uri, port=None")),
            (None, None, _) => None,
        };
        if kind == UriKind::Pyro && location.is_none() {
            return Err(invalid("invalid uri"));
        }
        Ok(Uri {
            kind,
            object: object.to_string(),
            location,
        })
    }
    /// Tags of a PYROMETA URI (empty for the other kinds).
    pub fn meta_tags(&self) -> Vec<String> {
        match self.kind {
            UriKind::PyroMeta => self.object.split(',').map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }
    /// The location rendered as Pyro4 does (`host:port`, `[ipv6]:port`, `./u:path`).
    /// None without a location, and, as in Pyro4's `URI.location`, for an empty host.
    pub fn location_str(&self) -> Option<String> {
        match self.location.as_ref()? {
            Location::Tcp { host, .. } if host.is_empty() => None,
            Location::Tcp { host, port } if host.contains(':') => Some(format!("[{host}]:{port}")),
            Location::Tcp { host, port } => Some(format!("{host}:{port}")),
            Location::Unix(path) => Some(format!("./u:{path}")),
        }
    }
    /// The protocol as Pyro4 writes it, the first element of Pyro4's state tuple (see
    /// [`Uri::state`] for all five).
    pub fn protocol_str(&self) -> &'static str {
        self.kind.as_str()
    }
    /// Pyro4's 5-tuple state: (protocol, object, sockname, host, port).
    pub fn state(&self) -> UriState<'_> {
        let (sockname, host, port) = match &self.location {
            None => (None, None, None),
            Some(Location::Unix(path)) => (Some(path.as_str()), None, None),
            Some(Location::Tcp { host, port }) => (None, Some(host.as_str()), Some(*port)),
        };
        UriState {
            protocol: self.protocol_str(),
            object: &self.object,
            sockname,
            host,
            port,
        }
    }
}

impl fmt::Display for Uri {
    /// Pyro4's `str(uri)`: `PROTOCOL:object[@location]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol_str(), self.object)?;
        if let Some(location) = self.location_str() {
            write!(f, "@{location}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Uri {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Uri> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Option<Location> {
        Some(Location::Tcp {
            host: host.into(),
            port,
        })
    }

    fn err(text: &str) -> String {
        match Uri::parse(text) {
            Err(Error::InvalidUri(m)) => m,
            other => panic!("{text:?} should fail, got {other:?}"),
        }
    }

    #[test]
    fn basic_forms() {
        let u = Uri::parse("PYRO:obj_123@localhost:9999").expect("valid");
        assert_eq!(u, Uri::pyro_tcp("obj_123", "localhost", 9999));
        assert_eq!(u.to_string(), "PYRO:obj_123@localhost:9999");
        let u = Uri::parse("pyro:x@[::1]:50000").expect("valid");
        assert_eq!(
            (u.kind.clone(), u.location.clone()),
            (UriKind::Pyro, tcp("::1", 50000))
        );
        assert_eq!(u.to_string(), "PYRO:x@[::1]:50000");
        let u = Uri::parse("PYRO:x@./u:/tmp/sock").expect("valid");
        assert_eq!(u, Uri::pyro_unix("x", "/tmp/sock"));
        assert_eq!(u.to_string(), "PYRO:x@./u:/tmp/sock");
        let u = Uri::parse("PyroName:my.name").expect("valid");
        assert_eq!(
            (u.kind.clone(), u.location.clone()),
            (UriKind::PyroName, None)
        );
        assert_eq!(u.to_string(), "PYRONAME:my.name");
        assert_eq!(
            Uri::parse("PYRONAME:n@nshost").expect("valid").location,
            tcp("nshost", 9090)
        );
        assert_eq!(
            Uri::parse_with_ns_port("PYRONAME:n@nshost", 1234)
                .expect("valid")
                .location,
            tcp("nshost", 1234)
        );
        assert_eq!(
            Uri::parse("PYRONAME:n@nshost:").expect("valid").location,
            tcp("nshost", 9090)
        );
        assert_eq!(
            Uri::parse("PYRONAME:n@[fe80::1]").expect("valid").location,
            tcp("fe80::1", 9090)
        );
    }

    #[test]
    fn grammar_corners() {
        // The object ends at the first '@'; the location may hold '@' and spaces.
        let u = Uri::parse("PYRO:a@b@c:1").expect("valid");
        assert_eq!((u.object.as_str(), u.location), ("a", tcp("b@c", 1)));
        assert_eq!(
            Uri::parse("PYRO:a@ho st:2").expect("valid").location,
            tcp("ho st", 2)
        );
        // A trailing '@' becomes part of the object.
        assert_eq!(Uri::parse("PYRONAME:obj@").expect("valid").object, "obj@");
        // `$` before one final newline.
        assert_eq!(
            Uri::parse("PYRO:o@h:1\n").expect("valid").location,
            tcp("h", 1)
        );
        assert_eq!(Uri::parse("PYRONAME:o\n").expect("valid").object, "o");
        assert_eq!(err("PYRO:o@h:1\n\n"), "invalid uri");
        assert_eq!(err("PYRO:o@h\n:1"), "invalid uri");
        // Empty host: Pyro4 keeps it and then renders no location.
        let u = Uri::parse("PYRO:o@:7").expect("valid");
        assert_eq!(
            (u.location.clone(), u.to_string()),
            (tcp("", 7), "PYRO:o".to_string())
        );
        // Python's int(): whitespace, sign, underscores.
        assert_eq!(
            Uri::parse("PYRO:o@h: +9_0 ").expect("valid").location,
            tcp("h", 90)
        );
        assert_eq!(
            Uri::parse("PYRO:o@h:\u{a0}5\u{3000}")
                .expect("valid")
                .location,
            tcp("h", 5)
        );
        assert_eq!(err("PYRO:o@h:\u{1c}5"), "invalid port in uri, port=\u{1c}5");
        // Anything after a bracketed address is ignored by Pyro4's re.match.
        assert_eq!(
            Uri::parse("PYRO:o@[::1]:80junk").expect("valid").location,
            tcp("::1", 80)
        );
    }

    #[test]
    fn error_texts() {
        assert_eq!(err("PYRO:obj"), "invalid uri");
        assert_eq!(err("PYRO:"), "invalid uri");
        assert_eq!(err("PYRO:a b@h:1"), "invalid uri");
        assert_eq!(err("PYRX:obj@h:1"), "invalid uri");
        assert_eq!(err("PYRO1:obj@h:1"), "invalid uri");
        assert_eq!(err("PYROX:obj@h:1"), "invalid uri (protocol)");
        assert_eq!(err("PYRO:obj@h"), "invalid port in uri, port=None");
        assert_eq!(err("PYRO:obj@h:"), "invalid port in uri, port=None");
        assert_eq!(err("PYRO:obj@h:abc"), "invalid port in uri, port=abc");
        assert_eq!(err("PYRO:obj@::1:9"), "invalid port in uri, port=:1:9");
        assert_eq!(err("PYRO:obj@./u:"), "invalid uri (location)");
        assert_eq!(err("PYRO:obj@./u:a:b"), "invalid uri (location)");
        assert_eq!(
            err("PYRO:obj@[[::1]]:9"),
            "invalid ipv6 address: enclosed in too many brackets"
        );
        assert_eq!(
            err("PYRO:obj@[host]:9"),
            "invalid ipv6 address: the part between brackets must be a numeric ipv6 address"
        );
        assert_eq!(err("PYRO:obj@[::1]"), "invalid port in uri, port=None");
        // Deviation: Pyro4 accepts these ports, a u16 cannot hold them.
        assert_eq!(err("PYRO:obj@h:65536"), "invalid port in uri, port=65536");
        assert_eq!(err("PYRO:obj@h:-1"), "invalid port in uri, port=-1");
    }

    #[test]
    fn meta_tags_and_state() {
        let u = Uri::parse("PYROMETA:a,b,a,c@h").expect("valid");
        assert_eq!(u.meta_tags(), vec!["a", "b", "c"]);
        assert_eq!(u.to_string(), "PYROMETA:a,b,c@h:9090");
        let st = u.state();
        assert_eq!(
            (st.protocol, st.sockname, st.host, st.port),
            ("PYROMETA", None, Some("h"), Some(9090))
        );
        let unix = Uri::parse("PYRO:o@./u:s").expect("valid");
        let st = unix.state();
        assert_eq!(
            (st.object, st.sockname, st.host, st.port),
            ("o", Some("s"), None, None)
        );
        assert!(Uri::parse("PYRONAME:n")
            .expect("valid")
            .meta_tags()
            .is_empty());
        let back = Uri::from_state("PYRO", "o", None, Some("::1"), Some(5)).expect("valid");
        assert_eq!(back.to_string(), "PYRO:o@[::1]:5");
        assert!(Uri::from_state("PYRO", "o", None, None, None).is_err());
        assert!(Uri::from_state("PYRO", "o", None, Some("h"), Some(70000)).is_err());
        assert!(Uri::from_state("HTTP", "o", None, Some("h"), Some(1)).is_err());
    }

    #[test]
    fn python_whitespace() {
        for c in [
            '\u{1c}', '\u{1f}', ' ', '\t', '\u{85}', '\u{a0}', '\u{3000}',
        ] {
            assert!(py_isspace(c), "{c:?}");
        }
        for c in ['a', '\u{200b}', '\u{180e}', '\u{feff}'] {
            assert!(!py_isspace(c), "{c:?}");
        }
    }
}
