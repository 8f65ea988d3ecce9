//! Pyro4 4.82's configuration items, their defaults and the `PYRO_*` environment
//! variables that preset them (`Pyro4/configuration.py`).

use crate::{Error, Result};
use pyro_codec::SerializerKind;
use std::sync::OnceLock;
use std::time::Duration;

/// Every configuration item of Pyro4 4.82 with its default. Field names are the Pyro4
/// item names in lower case; [`Config::set`] takes the Pyro4 spelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HOST: daemon bind host (also written into URIs).
    pub host: String,
    /// NS_HOST: where clients look for the name server. Pyro4 copies HOST's default
    /// *before* reading the environment, so PYRO_HOST does not change it.
    pub ns_host: String,
    /// NS_PORT: name server TCP port.
    pub ns_port: u16,
    /// NS_BCPORT: name server UDP broadcast port.
    pub ns_bcport: u16,
    /// NS_BCHOST: bind host of the broadcast responder (None = all interfaces).
    pub ns_bchost: Option<String>,
    /// NS_AUTOCLEAN: seconds between name server clean-ups (0 = off).
    pub ns_autoclean: f64,
    /// NATHOST: host advertised in URIs behind NAT.
    pub nathost: Option<String>,
    /// NATPORT: port advertised in URIs behind NAT (0 = same as the daemon's).
    pub natport: u16,
    /// COMPRESSION: zlib payloads of 200 bytes or more when it helps.
    pub compression: bool,
    /// SERVERTYPE: "thread" or "multiplex".
    pub servertype: String,
    /// COMMTIMEOUT: socket timeout in seconds (0 = none).
    pub commtimeout: f64,
    /// POLLTIMEOUT: server poll interval in seconds.
    pub polltimeout: f64,
    /// SOCK_REUSE: SO_REUSEADDR on server sockets.
    pub sock_reuse: bool,
    /// SOCK_NODELAY: TCP_NODELAY. Pyro4 defaults to off; this runtime always sets
    /// TCP_NODELAY on client connections because it writes each message in one piece.
    pub sock_nodelay: bool,
    /// ONEWAY_THREADED: oneway calls run in their own thread/task.
    pub oneway_threaded: bool,
    /// DETAILED_TRACEBACK: tracebacks with local variables.
    pub detailed_traceback: bool,
    /// THREADPOOL_SIZE: max concurrent connections of a thread-pool server.
    pub threadpool_size: usize,
    /// THREADPOOL_SIZE_MIN.
    pub threadpool_size_min: usize,
    /// AUTOPROXY: registered objects are returned as proxies.
    pub autoproxy: bool,
    /// MAX_MESSAGE_SIZE: 0 = unlimited.
    pub max_message_size: u64,
    /// BROADCAST_ADDRS: name server discovery targets (Pyro4 keeps the comma list as a
    /// string and splits it when used; here it is split when set). `''` means "".
    pub broadcast_addrs: Vec<String>,
    /// PREFER_IP_VERSION: 4, 6 or 0; 6 disables broadcast discovery.
    pub prefer_ip_version: i32,
    /// SERIALIZER: serializer name of clients.
    pub serializer: String,
    /// SERIALIZERS_ACCEPTED: serializer names a daemon accepts (a set in Pyro4; kept
    /// deduplicated in the order given).
    pub serializers_accepted: Vec<String>,
    /// PICKLE_PROTOCOL_VERSION (pickle.HIGHEST_PROTOCOL of CPython 3.8+).
    pub pickle_protocol_version: i32,
    /// DILL_PROTOCOL_VERSION (-1 when dill is absent).
    pub dill_protocol_version: i32,
    /// JSON_MODULE: name of the json module.
    pub json_module: String,
    /// LOGWIRE: log raw messages.
    pub logwire: bool,
    /// METADATA: clients ask for metadata on connect and check names locally.
    pub metadata: bool,
    /// REQUIRE_EXPOSE: daemons only expose what is marked exposed.
    pub require_expose: bool,
    /// USE_MSG_WAITALL: receive strategy (no effect here).
    pub use_msg_waitall: bool,
    /// MAX_RETRIES: automatic retries of a call after ConnectionClosed/Timeout errors.
    pub max_retries: u32,
    /// ITER_STREAMING: daemons stream iterator results.
    pub iter_streaming: bool,
    /// ITER_STREAM_LIFETIME: max age of a stream in seconds (0 = unlimited).
    pub iter_stream_lifetime: f64,
    /// ITER_STREAM_LINGER: seconds streams survive a disconnect.
    pub iter_stream_linger: f64,
    /// FLAME_ENABLED.
    pub flame_enabled: bool,
    /// SSL: TLS on all sockets (not supported by this runtime yet).
    pub ssl: bool,
    /// SSL_SERVERCERT.
    pub ssl_servercert: String,
    /// SSL_SERVERKEY.
    pub ssl_serverkey: String,
    /// SSL_SERVERKEYPASSWD.
    pub ssl_serverkeypasswd: String,
    /// SSL_REQUIRECLIENTCERT.
    pub ssl_requireclientcert: bool,
    /// SSL_CLIENTCERT.
    pub ssl_clientcert: String,
    /// SSL_CLIENTKEY.
    pub ssl_clientkey: String,
    /// SSL_CLIENTKEYPASSWD.
    pub ssl_clientkeypasswd: String,
    /// SSL_CACERTS.
    pub ssl_cacerts: String,
}

/// The Pyro4 item names, in Pyro4's `__slots__` order.
pub const ITEMS: &[&str] = &[
    "HOST",
    "NS_HOST",
    "NS_PORT",
    "NS_BCPORT",
    "NS_BCHOST",
    "NS_AUTOCLEAN",
    "COMPRESSION",
    "SERVERTYPE",
    "COMMTIMEOUT",
    "POLLTIMEOUT",
    "ONEWAY_THREADED",
    "DETAILED_TRACEBACK",
    "SOCK_REUSE",
    "SOCK_NODELAY",
    "PREFER_IP_VERSION",
    "THREADPOOL_SIZE",
    "THREADPOOL_SIZE_MIN",
    "AUTOPROXY",
    "PICKLE_PROTOCOL_VERSION",
    "BROADCAST_ADDRS",
    "NATHOST",
    "NATPORT",
    "MAX_MESSAGE_SIZE",
    "FLAME_ENABLED",
    "SERIALIZER",
    "SERIALIZERS_ACCEPTED",
    "LOGWIRE",
    "METADATA",
    "REQUIRE_EXPOSE",
    "USE_MSG_WAITALL",
    "JSON_MODULE",
    "MAX_RETRIES",
    "DILL_PROTOCOL_VERSION",
    "ITER_STREAMING",
    "ITER_STREAM_LIFETIME",
    "ITER_STREAM_LINGER",
    "SSL",
    "SSL_REQUIRECLIENTCERT",
    "SSL_CACERTS",
    "SSL_SERVERCERT",
    "SSL_SERVERKEY",
    "SSL_SERVERKEYPASSWD",
    "SSL_CLIENTCERT",
    "SSL_CLIENTKEY",
    "SSL_CLIENTKEYPASSWD",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            ns_host: "localhost".into(),
            ns_port: 9090,
            ns_bcport: 9091,
            ns_bchost: None,
            ns_autoclean: 0.0,
            nathost: None,
            natport: 0,
            compression: false,
            servertype: "thread".into(),
            commtimeout: 0.0,
            polltimeout: 2.0,
            sock_reuse: true,
            sock_nodelay: false,
            oneway_threaded: true,
            detailed_traceback: false,
            threadpool_size: 40,
            threadpool_size_min: 4,
            autoproxy: true,
            max_message_size: 0,
            broadcast_addrs: parse_addresses("<broadcast>, 0.0.0.0"),
            prefer_ip_version: 4,
            serializer: "serpent".into(),
            serializers_accepted: parse_set("serpent,marshal,json"),
            pickle_protocol_version: 5,
            dill_protocol_version: -1,
            json_module: "json".into(),
            logwire: false,
            metadata: true,
            require_expose: true,
            use_msg_waitall: !cfg!(windows),
            max_retries: 0,
            iter_streaming: true,
            iter_stream_lifetime: 0.0,
            iter_stream_linger: 30.0,
            flame_enabled: false,
            ssl: false,
            ssl_servercert: String::new(),
            ssl_serverkey: String::new(),
            ssl_serverkeypasswd: String::new(),
            ssl_requireclientcert: false,
            ssl_clientcert: String::new(),
            ssl_clientkey: String::new(),
            ssl_clientkeypasswd: String::new(),
            ssl_cacerts: String::new(),
        }
    }
}

/// Pyro4's `parseAddressesString`: split at commas, strip, `''` means the empty string.
pub fn parse_addresses(text: &str) -> Vec<String> {
    text.split(',')
        .map(|a| {
            let a = a.trim();
            if a == "''" {
                String::new()
            } else {
                a.to_string()
            }
        })
        .collect()
}

/// `set(text.split(','))` keeping first occurrences in order. Pyro4 does not strip the
/// names; neither does this.
fn parse_set(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in text.split(',') {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

fn parse_bool(item: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "0" | "off" | "no" | "false" => Ok(false),
        "1" | "yes" | "on" | "true" => Ok(true),
        _ => Err(Error::Config(format!(
            "invalid boolean value: PYRO_{item}={}",
            v.to_lowercase()
        ))),
    }
}

/// Python's `int(text)`: surrounding whitespace and single underscores between digits
/// allowed, an optional sign.
fn parse_int<T: std::str::FromStr>(item: &str, v: &str) -> Result<T> {
    let t = v.trim();
    let cleaned: String = if t.contains('_') && !t.contains("__") && !t.ends_with('_') {
        t.replace('_', "")
    } else {
        t.to_string()
    };
    let cleaned = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    cleaned.parse::<T>().map_err(|_| {
        Error::Config(format!(
            "invalid literal for int() with base 10: '{v}' (PYRO_{item})"
        ))
    })
}

/// Python's `float(text)`: whitespace, `inf`/`infinity`/`nan` in any case.
fn parse_float(item: &str, v: &str) -> Result<f64> {
    let t = v.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let special = match unsigned {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(x) = special {
        return Ok(if lower.starts_with('-') { -x } else { x });
    }
    t.replace('_', "").parse::<f64>().map_err(|_| {
        Error::Config(format!(
            "could not convert string to float: '{v}' (PYRO_{item})"
        ))
    })
}

impl Config {
    /// Defaults, then every `PYRO_<ITEM>` environment variable applied with Pyro4's
    /// conversion rules. Unknown `PYRO_*` variables are ignored, as Pyro4 does.
    pub fn from_env() -> Result<Config> {
        Config::from_vars(std::env::vars())
    }

    /// Like [`Config::from_env`] with the variables given explicitly (for tests and
    /// embedding).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Config::default();
        for (k, v) in vars {
            if let Some(item) = k.as_ref().strip_prefix("PYRO_") {
                if ITEMS.contains(&item) {
                    config.set(item, v.as_ref())?;
                }
            }
        }
        Ok(config)
    }

    /// The process-wide configuration: read from the environment on first use (like
    /// Pyro4's module-level `config`). An invalid variable is reported through
    /// `tracing` and the defaults are used instead.
    pub fn global() -> &'static Config {
        static GLOBAL: OnceLock<Config> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            Config::from_env().unwrap_or_else(|e| {
                tracing::warn!("ignoring PYRO_* environment: {e}");
                Config::default()
            })
        })
    }

    /// Set one item from its text form, converting as Pyro4 converts environment values
    /// (by the type of the default; None-default items take the raw string).
    pub fn set(&mut self, item: &str, value: &str) -> Result<()> {
        let v = value;
        match item {
            "HOST" => self.host = v.to_string(),
            "NS_HOST" => self.ns_host = v.to_string(),
            "NS_PORT" => self.ns_port = parse_int(item, v)?,
            "NS_BCPORT" => self.ns_bcport = parse_int(item, v)?,
            "NS_BCHOST" => self.ns_bchost = Some(v.to_string()),
            "NS_AUTOCLEAN" => self.ns_autoclean = parse_float(item, v)?,
            "NATHOST" => self.nathost = Some(v.to_string()),
            "NATPORT" => self.natport = parse_int(item, v)?,
            "COMPRESSION" => self.compression = parse_bool(item, v)?,
            "SERVERTYPE" => self.servertype = v.to_string(),
            "COMMTIMEOUT" => self.commtimeout = parse_float(item, v)?,
            "POLLTIMEOUT" => self.polltimeout = parse_float(item, v)?,
            "SOCK_REUSE" => self.sock_reuse = parse_bool(item, v)?,
            "SOCK_NODELAY" => self.sock_nodelay = parse_bool(item, v)?,
            "ONEWAY_THREADED" => self.oneway_threaded = parse_bool(item, v)?,
            "DETAILED_TRACEBACK" => self.detailed_traceback = parse_bool(item, v)?,
            "THREADPOOL_SIZE" => self.threadpool_size = parse_int(item, v)?,
            "THREADPOOL_SIZE_MIN" => self.threadpool_size_min = parse_int(item, v)?,
            "AUTOPROXY" => self.autoproxy = parse_bool(item, v)?,
            "MAX_MESSAGE_SIZE" => self.max_message_size = parse_int(item, v)?,
            "BROADCAST_ADDRS" => self.broadcast_addrs = parse_addresses(v),
            "PREFER_IP_VERSION" => self.prefer_ip_version = parse_int(item, v)?,
            "SERIALIZER" => self.serializer = v.to_string(),
            "SERIALIZERS_ACCEPTED" => self.serializers_accepted = parse_set(v),
            "PICKLE_PROTOCOL_VERSION" => self.pickle_protocol_version = parse_int(item, v)?,
            "DILL_PROTOCOL_VERSION" => self.dill_protocol_version = parse_int(item, v)?,
            "JSON_MODULE" => self.json_module = v.to_string(),
            "LOGWIRE" => self.logwire = parse_bool(item, v)?,
            "METADATA" => self.metadata = parse_bool(item, v)?,
            "REQUIRE_EXPOSE" => self.require_expose = parse_bool(item, v)?,
            "USE_MSG_WAITALL" => self.use_msg_waitall = parse_bool(item, v)?,
            "MAX_RETRIES" => self.max_retries = parse_int(item, v)?,
            "ITER_STREAMING" => self.iter_streaming = parse_bool(item, v)?,
            "ITER_STREAM_LIFETIME" => self.iter_stream_lifetime = parse_float(item, v)?,
            "ITER_STREAM_LINGER" => self.iter_stream_linger = parse_float(item, v)?,
            "FLAME_ENABLED" => self.flame_enabled = parse_bool(item, v)?,
            "SSL" => self.ssl = parse_bool(item, v)?,
            "SSL_SERVERCERT" => self.ssl_servercert = v.to_string(),
            "SSL_SERVERKEY" => self.ssl_serverkey = v.to_string(),
            "SSL_SERVERKEYPASSWD" => self.ssl_serverkeypasswd = v.to_string(),
            "SSL_REQUIRECLIENTCERT" => self.ssl_requireclientcert = parse_bool(item, v)?,
            "SSL_CLIENTCERT" => self.ssl_clientcert = v.to_string(),
            "SSL_CLIENTKEY" => self.ssl_clientkey = v.to_string(),
            "SSL_CLIENTKEYPASSWD" => self.ssl_clientkeypasswd = v.to_string(),
            "SSL_CACERTS" => self.ssl_cacerts = v.to_string(),
            other => return Err(Error::Config(format!("unknown config item: {other}"))),
        }
        Ok(())
    }

    /// The configured client serializer, if it is one Pyro knows.
    pub fn serializer_kind(&self) -> Result<SerializerKind> {
        SerializerKind::from_name(&self.serializer).ok_or_else(|| {
            Error::Serialize(format!(
                "serializer '{}' is unknown or not available",
                self.serializer
            ))
        })
    }

    /// COMMTIMEOUT as a duration; None when 0 (no timeout) or not a positive number.
    pub fn comm_timeout(&self) -> Option<Duration> {
        seconds(self.commtimeout)
    }
}

/// Seconds as a Duration; None for 0, negative or non-finite values (Pyro4: no timeout).
pub fn seconds(s: f64) -> Option<Duration> {
    if s.is_finite() && s > 0.0 {
        Some(Duration::from_secs_f64(s))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_pyro4() {
        let c = Config::default();
        assert_eq!(c.ns_port, 9090);
        assert_eq!(c.ns_bcport, 9091);
        assert_eq!(
            c.broadcast_addrs,
            vec!["<broadcast>".to_string(), "0.0.0.0".to_string()]
        );
        assert_eq!(c.serializers_accepted, vec!["serpent", "marshal", "json"]);
        assert!(c.metadata);
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.comm_timeout(), None);
    }

    #[test]
    fn env_conversion_rules() {
        let c = Config::from_vars([
            ("PYRO_COMPRESSION", "Yes"),
            ("PYRO_METADATA", "off"),
            ("PYRO_NS_PORT", " 1234 "),
            ("PYRO_COMMTIMEOUT", "1.5"),
            ("PYRO_BROADCAST_ADDRS", "127.0.0.1, ''"),
            ("PYRO_SERIALIZERS_ACCEPTED", "json,serpent,json"),
            ("PYRO_NATHOST", "example"),
            ("PYRO_UNKNOWN_THING", "whatever"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert!(c.compression);
        assert!(!c.metadata);
        assert_eq!(c.ns_port, 1234);
        assert_eq!(c.comm_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(
            c.broadcast_addrs,
            vec!["127.0.0.1".to_string(), String::new()]
        );
        assert_eq!(c.serializers_accepted, vec!["json", "serpent"]);
        assert_eq!(c.nathost.as_deref(), Some("example"));
    }

    #[test]
    fn invalid_values_are_errors() {
        let e = Config::from_vars([("PYRO_COMPRESSION", "maybe")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid boolean value: PYRO_COMPRESSION=maybe"
        );
        assert_eq!(e.class_name(), "ValueError");
        assert!(Config::from_vars([("PYRO_NS_PORT", "1.5")]).is_err());
        assert!(Config::from_vars([("PYRO_NS_PORT", "99999")]).is_err());
        assert!(Config::from_vars([("PYRO_POLLTIMEOUT", "soon")]).is_err());
    }

    #[test]
    fn every_item_is_settable() {
        let mut c = Config::default();
        for item in ITEMS {
            let sample = match *item {
                "HOST"
                | "NS_HOST"
                | "NS_BCHOST"
                | "NATHOST"
                | "SERVERTYPE"
                | "SERIALIZER"
                | "SERIALIZERS_ACCEPTED"
                | "JSON_MODULE"
                | "BROADCAST_ADDRS" => "x",
                s if s.starts_with("SSL_") && s != "SSL_REQUIRECLIENTCERT" => "x",
                "NS_AUTOCLEAN"
                | "COMMTIMEOUT"
                | "POLLTIMEOUT"
                | "ITER_STREAM_LIFETIME"
                | "ITER_STREAM_LINGER" => "1.0",
                "NS_PORT"
                | "NS_BCPORT"
                | "NATPORT"
                | "THREADPOOL_SIZE"
                | "THREADPOOL_SIZE_MIN"
                | "MAX_MESSAGE_SIZE"
                | "PREFER_IP_VERSION"
                | "PICKLE_PROTOCOL_VERSION"
                | "DILL_PROTOCOL_VERSION"
                | "MAX_RETRIES" => "3",
                _ => "true",
            };
            c.set(item, sample)
                .unwrap_or_else(|e| panic!("{item}: {e}"));
        }
        assert!(c.set("NOPE", "1").is_err());
    }
}
