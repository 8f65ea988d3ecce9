//! Finding and using a Pyro4 name server: `locateNS` (direct and UDP broadcast) and a
//! typed wrapper over the `Pyro.NameServer` object (Pyro4's `naming.py` and
//! `core._locateNS`).

use crate::config::Config;
use crate::proxy::Proxy;
use crate::{Error, Result};
use pyro_codec::envelope;
use pyro_codec::{Dict, Value};
use pyro_wire::{Location, Uri, UriKind, NAMESERVER_NAME};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// How long each broadcast round waits for an answer (Pyro4: 0.7 s).
const BROADCAST_WAIT: Duration = Duration::from_millis(700);
/// Broadcast rounds before giving up (Pyro4: 3).
const BROADCAST_ROUNDS: usize = 3;
/// The request datagram of the name server discovery protocol.
const BROADCAST_REQUEST: &[u8] = b"GET_NSURI";

/// Find a name server with the process-wide configuration; see [`locate_ns_with`].
pub async fn locate_ns(
    host: Option<&str>,
    port: Option<u16>,
    broadcast: bool,
    hmac_key: Option<&[u8]>,
) -> Result<NameServer> {
    let config = Arc::new(Config::global().clone());
    locate_ns_with(&config, host, port, broadcast, hmac_key).await
}

/// Find a name server as Pyro4's `locateNS(host, port, broadcast, hmac_key)` does:
///
/// - `host` given: connect directly to `host:(port or NS_PORT)` (`./u:path` is a Unix
///   socket); failure is `NamingError("Failed to locate the nameserver")`.
/// - no `host`: if NS_HOST is a loopback name, try it directly first (port or NS_PORT);
///   then, if `broadcast` and PREFER_IP_VERSION is not 6, send `GET_NSURI` to every
///   BROADCAST_ADDRS address on (port or NS_BCPORT), 3 rounds of 0.7 s; finally connect
///   to NS_HOST:NS_PORT directly.
///
/// The proxy comes back connected, except when it was found by broadcast (as in Pyro4).
pub async fn locate_ns_with(
    config: &Arc<Config>,
    host: Option<&str>,
    port: Option<u16>,
    broadcast: bool,
    hmac_key: Option<&[u8]>,
) -> Result<NameServer> {
    let (host, port) = match host {
        Some(h) => (h.to_string(), port),
        None => {
            let ns_host = config.ns_host.as_str();
            if ns_host == "localhost" || ns_host == "::1" || ns_host.starts_with("127.") {
                // Pyro4 also tries 127.0.1.1 when that address reverse-resolves (Debian
                // hosts files); that needs a reverse lookup, which is left out here.
                let uri = Uri::pyro_tcp(NAMESERVER_NAME, ns_host, port.unwrap_or(config.ns_port));
                let mut proxy = ns_proxy(uri, config, hmac_key)?;
                match proxy.bind().await {
                    Ok(_) => return Ok(NameServer::new(proxy)),
                    Err(e) => tracing::debug!("name server not at {ns_host}: {e}"),
                }
            }
            if broadcast && config.prefer_ip_version != 6 {
                let bcport = port.unwrap_or(config.ns_bcport);
                if let Some(text) = broadcast_locate(&config.broadcast_addrs, bcport).await? {
                    let uri = Uri::parse_with_ns_port(&text, config.ns_port)?;
                    tracing::debug!("located NS by broadcast: {text}");
                    return Ok(NameServer::new(ns_proxy(uri, config, hmac_key)?));
                }
                tracing::debug!("broadcast locate failed, try direct connection on NS_HOST");
            }
            (config.ns_host.clone(), Some(config.ns_port))
        }
    };
    let location = match host.strip_prefix("./u:") {
        Some(path) => Location::Unix(path.to_string()),
        None => Location::Tcp {
            host: host.clone(),
            port: port.unwrap_or(config.ns_port),
        },
    };
    let uri = Uri {
        kind: UriKind::Pyro,
        object: NAMESERVER_NAME.into(),
        location: Some(location),
    };
    let mut proxy = ns_proxy(uri, config, hmac_key)?;
    match proxy.bind().await {
        Ok(_) => Ok(NameServer::new(proxy)),
        Err(e) => Err(Error::Naming(format!(
            "Failed to locate the nameserver: {e}"
        ))),
    }
}

fn ns_proxy(uri: Uri, config: &Arc<Config>, hmac_key: Option<&[u8]>) -> Result<Proxy> {
    let mut proxy = Proxy::with_config(uri, config.clone())?;
    proxy.set_hmac_key(hmac_key.map(<[u8]>::to_vec));
    Ok(proxy)
}

/// Send `GET_NSURI` to each address, up to 3 rounds, and return the first answer (the
/// name server's URI text, ISO-8859-1).
pub async fn broadcast_locate(addresses: &[String], port: u16) -> Result<Option<String>> {
    let sock = UdpSocket::bind(("0.0.0.0", 0))
        .await
        .map_err(|e| Error::Communication(format!("cannot create broadcast socket: {e}")))?;
    sock.set_broadcast(true)
        .map_err(|e| Error::Communication(format!("cannot enable broadcast: {e}")))?;
    let mut buf = [0u8; 100];
    for _ in 0..BROADCAST_ROUNDS {
        for addr in addresses {
            let target = match addr.as_str() {
                "<broadcast>" => "255.255.255.255",
                "" => "0.0.0.0",
                other => other,
            };
            // Pyro4 ignores "address not available"-style failures per address; an
            // unreachable or unresolvable target must not end the search either.
            if let Err(e) = sock.send_to(BROADCAST_REQUEST, (target, port)).await {
                tracing::debug!("broadcast to {target}:{port} failed: {e}");
            }
        }
        match tokio::time::timeout(BROADCAST_WAIT, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => {
                let text: String = buf[..n].iter().map(|&b| b as char).collect();
                return Ok(Some(text));
            }
            Ok(Err(e)) => {
                // e.g. ICMP port unreachable reported on the socket: try the next round
                tracing::debug!("broadcast receive failed: {e}");
                tokio::time::sleep(BROADCAST_WAIT / 4).await;
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// Which entries [`NameServer::list`] returns. Pyro4 allows at most one filter per call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListFilter {
    /// Everything.
    #[default]
    All,
    /// Names starting with this prefix.
    Prefix(String),
    /// Names matching this Python regex (anchored at the start, `re.match`).
    Regex(String),
    /// Registrations carrying all of these metadata tags.
    MetadataAll(Vec<String>),
    /// Registrations carrying at least one of these metadata tags.
    MetadataAny(Vec<String>),
}

impl ListFilter {
    /// The keyword argument Pyro4's `list()` takes for this filter.
    fn to_kwargs(&self, kwargs: &mut Dict) {
        match self {
            ListFilter::All => {}
            ListFilter::Prefix(p) => kwargs.set("prefix", Value::str(p.as_str())),
            ListFilter::Regex(r) => kwargs.set("regex", Value::str(r.as_str())),
            ListFilter::MetadataAll(tags) => kwargs.set("metadata_all", tag_set(tags)),
            ListFilter::MetadataAny(tags) => kwargs.set("metadata_any", tag_set(tags)),
        }
    }
}

/// A registration as `list(..., return_metadata=True)` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Registered name.
    pub name: String,
    /// URI text as stored.
    pub uri: String,
    /// Metadata tags (server order).
    pub metadata: Vec<String>,
}

/// Metadata tags as Pyro4 sends them: a set of str.
fn tag_set(tags: &[String]) -> Value {
    let mut seen: Vec<Value> = Vec::with_capacity(tags.len());
    for t in tags {
        if !seen.iter().any(|v| v.as_str() == Some(t)) {
            seen.push(Value::str(t.as_str()));
        }
    }
    Value::Set(seen)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_seq()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn uri_text(value: &Value) -> Result<String> {
    match value {
        Value::Str(s) => Ok(s.clone()),
        other => envelope::uri_from_value(other)
            .map(|u| u.to_string())
            .ok_or_else(|| Error::Protocol(format!("expected a URI, got a {}", other.type_name()))),
    }
}

/// A proxy for `Pyro.NameServer` with typed methods that send exactly the argument
/// shapes Pyro4's own proxy sends.
#[derive(Debug)]
pub struct NameServer {
    proxy: Proxy,
}

impl NameServer {
    /// Wrap a proxy for a name server object.
    pub fn new(proxy: Proxy) -> NameServer {
        NameServer { proxy }
    }

    /// A name server at a URI text (`PYRO:Pyro.NameServer@host:port`), not yet connected.
    pub fn from_uri(uri: &str) -> Result<NameServer> {
        Ok(NameServer::new(Proxy::new(uri)?))
    }

    /// The underlying proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The underlying proxy, mutably (timeouts, HMAC key, serializer ...).
    pub fn proxy_mut(&mut self) -> &mut Proxy {
        &mut self.proxy
    }

    /// Unwrap the proxy.
    pub fn into_proxy(self) -> Proxy {
        self.proxy
    }

    async fn call(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> Result<Value> {
        self.proxy.call(method, args, kwargs).await
    }

    /// `ping()`.
    pub async fn ping(&mut self) -> Result<()> {
        self.call("ping", Vec::new(), Dict::new()).await.map(|_| ())
    }

    /// `count()`: number of registrations, the name server's own included.
    pub async fn count(&mut self) -> Result<i64> {
        let v = self.call("count", Vec::new(), Dict::new()).await?;
        v.as_i64()
            .ok_or_else(|| Error::Protocol(format!("count() returned a {}", v.type_name())))
    }

    /// `lookup(name)`: the registered URI. Unknown names give the remote
    /// `NamingError("unknown name: ...")`.
    pub async fn lookup(&mut self, name: &str) -> Result<Uri> {
        let v = self
            .call("lookup", vec![Value::str(name)], Dict::new())
            .await?;
        envelope::uri_from_value(&v).ok_or_else(|| {
            Error::Protocol(format!(
                "lookup() returned a {} instead of a URI",
                v.type_name()
            ))
        })
    }

    /// `lookup(name, return_metadata=True)`: the URI and its metadata tags.
    pub async fn lookup_with_metadata(&mut self, name: &str) -> Result<(Uri, Vec<String>)> {
        let mut kwargs = Dict::new();
        kwargs.set("return_metadata", Value::Bool(true));
        let v = self.call("lookup", vec![Value::str(name)], kwargs).await?;
        match v.as_seq() {
            Some([uri, meta]) => {
                let uri = envelope::uri_from_value(uri)
                    .ok_or_else(|| Error::Protocol("lookup() returned no URI".into()))?;
                Ok((uri, strings(meta)))
            }
            _ => Err(Error::Protocol(format!(
                "lookup(return_metadata=True) returned a {}",
                v.type_name()
            ))),
        }
    }

    /// `register(name, uri, safe=..., metadata=...)`. `safe`: refuse to replace an
    /// existing name (remote `NamingError`). The URI is sent as text; the name server
    /// validates it.
    pub async fn register(
        &mut self,
        name: &str,
        uri: &str,
        safe: bool,
        metadata: Option<&[String]>,
    ) -> Result<()> {
        let mut kwargs = Dict::new();
        if safe {
            kwargs.set("safe", Value::Bool(true));
        }
        if let Some(tags) = metadata {
            kwargs.set("metadata", tag_set(tags));
        }
        self.call("register", vec![Value::str(name), Value::str(uri)], kwargs)
            .await
            .map(|_| ())
    }

    /// `set_metadata(name, metadata)`: replace the tags (empty = none).
    pub async fn set_metadata(&mut self, name: &str, metadata: &[String]) -> Result<()> {
        self.call(
            "set_metadata",
            vec![Value::str(name), tag_set(metadata)],
            Dict::new(),
        )
        .await
        .map(|_| ())
    }

    /// `remove(name=None, prefix=None, regex=None)`: number of registrations removed
    /// (the name server's own entry is never removed). `name` is sent positionally,
    /// the others as keywords, as Pyro4's nsc does.
    pub async fn remove(
        &mut self,
        name: Option<&str>,
        prefix: Option<&str>,
        regex: Option<&str>,
    ) -> Result<i64> {
        let args = name.map(|n| vec![Value::str(n)]).unwrap_or_default();
        let mut kwargs = Dict::new();
        if let Some(p) = prefix {
            kwargs.set("prefix", Value::str(p));
        }
        if let Some(r) = regex {
            kwargs.set("regex", Value::str(r));
        }
        let v = self.call("remove", args, kwargs).await?;
        v.as_i64()
            .ok_or_else(|| Error::Protocol(format!("remove() returned a {}", v.type_name())))
    }

    /// `list(<filter>, return_metadata=...)` exactly as sent by Pyro4, returning the raw
    /// reply: `{name: uri}` or `{name: (uri, [tags])}`.
    pub async fn list_raw(&mut self, filter: &ListFilter, return_metadata: bool) -> Result<Value> {
        let mut kwargs = Dict::new();
        filter.to_kwargs(&mut kwargs);
        if return_metadata {
            kwargs.set("return_metadata", Value::Bool(true));
        }
        self.call("list", Vec::new(), kwargs).await
    }

    /// `list(<filter>)`: (name, uri) pairs in the server's order.
    pub async fn list(&mut self, filter: &ListFilter) -> Result<Vec<(String, String)>> {
        let v = self.list_raw(filter, false).await?;
        let dict = v
            .as_dict()
            .ok_or_else(|| Error::Protocol(format!("list() returned a {}", v.type_name())))?;
        dict.iter()
            .map(|(k, u)| {
                let name = k
                    .as_str()
                    .ok_or_else(|| Error::Protocol("list(): name is not a str".into()))?;
                Ok((name.to_string(), uri_text(u)?))
            })
            .collect()
    }

    /// `list(<filter>, return_metadata=True)`.
    pub async fn list_with_metadata(&mut self, filter: &ListFilter) -> Result<Vec<Registration>> {
        let v = self.list_raw(filter, true).await?;
        let dict = v
            .as_dict()
            .ok_or_else(|| Error::Protocol(format!("list() returned a {}", v.type_name())))?;
        dict.iter()
            .map(|(k, entry)| {
                let name = k
                    .as_str()
                    .ok_or_else(|| Error::Protocol("list(): name is not a str".into()))?;
                match entry.as_seq() {
                    Some([uri, meta]) => Ok(Registration {
                        name: name.to_string(),
                        uri: uri_text(uri)?,
                        metadata: strings(meta),
                    }),
                    _ => Err(Error::Protocol(
                        "list(return_metadata=True): bad entry".into(),
                    )),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_pyro4_kwargs() {
        let mut d = Dict::new();
        ListFilter::MetadataAll(vec!["a".into(), "b".into(), "a".into()]).to_kwargs(&mut d);
        assert_eq!(
            d.get_str("metadata_all"),
            Some(&Value::Set(vec![Value::str("a"), Value::str("b")]))
        );
        let mut d = Dict::new();
        ListFilter::All.to_kwargs(&mut d);
        assert!(d.is_empty());
    }

    #[tokio::test]
    async fn broadcast_without_answer_gives_none_in_bounded_time() {
        // A UDP port on loopback with nobody listening: three quiet rounds.
        let quiet = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = quiet.local_addr().unwrap().port();
        drop(quiet);
        let start = std::time::Instant::now();
        let found = broadcast_locate(&["127.0.0.1".to_string()], port)
            .await
            .unwrap();
        assert!(found.is_none());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn broadcast_answer_is_returned() {
        let responder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = responder.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 100];
            let (n, from) = responder.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"GET_NSURI");
            responder
                .send_to(b"PYRO:Pyro.NameServer@127.0.0.1:1234", from)
                .await
                .unwrap();
        });
        let found = broadcast_locate(&["127.0.0.1".to_string()], port)
            .await
            .unwrap();
        assert_eq!(
            found.as_deref(),
            Some("PYRO:Pyro.NameServer@127.0.0.1:1234")
        );
        task.await.unwrap();
    }
}
