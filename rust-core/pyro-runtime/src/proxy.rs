//! The async client proxy: Pyro4's `core.Proxy` (connect + handshake, metadata, calls,
//! oneway, remote attributes, batches, item streams, retries, timeouts).
//!
//! Calls take and return [`Value`]s, encoded in the proxy's serializer (serpent, json,
//! marshal, or pickle; dill and cloudpickle use pickle's format under their own ids).
//! A caller that serializes by itself (the Python binding, with Python's pickle or its
//! own serpent walker) uses the raw-payload calls instead:
//!
//! ```no_run
//! # async fn demo(proxy: &mut pyro_runtime::Proxy, pickled: Vec<u8>) -> pyro_runtime::Result<()> {
//! // The payload must name the object id the proxy resolved while connecting.
//! let object = proxy.connect_for_call().await?.to_string();
//! # let _ = object;
//! // ... serialize (object, method, vargs, kwargs) into `pickled` ...
//! if let Some(reply) = proxy.call_raw(0, 4, &pickled, None).await? {
//!     // reply.data: the pickled result (or exception when reply.is_exception()).
//!     # let _ = reply;
//! }
//! # Ok(())
//! # }
//! ```

use crate::config::{seconds, Config};
use crate::connection::{location_text, Connection, Received, SPLIT_WRITE_ABOVE};
use crate::error::PyStr;
use crate::naming;
use crate::{Error, Result};
use bytes::Bytes;
use pyro_codec::envelope::{self, Call, ProxyState, RemoteException};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use pyro_wire::message::compress_payload;
use pyro_wire::{
    Annotations, Limits, Location, Message, MsgType, Uri, UriKind, ANNOTATION_CORR,
    ANNOTATION_STRM, DAEMON_NAME, FLAGS_BATCH, FLAGS_EXCEPTION, FLAGS_ITEMSTREAMRESULT,
    FLAGS_META_ON_CONNECT, FLAGS_ONEWAY,
};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// Exception classes that end a remote iterator (Python 2 and 3 spellings, as Pyrolite
/// recognises them).
const STOP_CLASSES: &[&str] = &[
    "builtins.StopIteration",
    "builtins.StopAsyncIteration",
    "__builtin__.StopIteration",
    "__builtin__.StopAsyncIteration",
    "exceptions.StopIteration",
    "builtins.GeneratorExit",
    "__builtin__.GeneratorExit",
    "exceptions.GeneratorExit",
    "StopIteration",
    "GeneratorExit",
];

/// What one invocation produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A value (None for oneway calls).
    Value(Value),
    /// The remote method returned an iterator; items are fetched with
    /// [`Proxy::stream_next`] using this stream id.
    Stream(String),
}

/// The undecoded reply of [`Proxy::invoke_raw`]: the MSG_RESULT exactly as the daemon
/// sent it, after the checks every call makes (message type, sequence number, serializer
/// id, HMAC) and with a compressed payload already inflated.
///
/// Pyro4 offers the same with `_pyroRawWireResponse`; here it is what a caller that
/// decodes payloads itself (the Python binding with Python's own pickle, or its serpent
/// walker) uses to skip the [`Value`] step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// The reply's FLAGS_* bits (FLAGS_COMPRESSED cleared: `data` is plain).
    /// FLAGS_EXCEPTION: `data` holds the serialized exception. FLAGS_ITEMSTREAMRESULT
    /// (set together with FLAGS_EXCEPTION): the result is a remote iterator, see
    /// `stream_id`. FLAGS_BATCH: a batch result.
    pub flags: u16,
    /// Serializer id of `data` (always the request's: another one is refused with a
    /// `SerializeError`, as Pyro4 does).
    pub serializer_id: u16,
    /// The payload, serialized. A large one is a view of the connection's read buffer:
    /// drop it before the next call on this proxy, or that call reads into fresh memory.
    pub data: Bytes,
    /// The reply's annotations (CORR and whatever the daemon added; HMAC removed).
    pub annotations: Annotations,
    /// For a remote iterator (FLAGS_ITEMSTREAMRESULT): the stream id from the STRM
    /// annotation, for [`Proxy::stream_next`] / [`Proxy::stream_close`].
    pub stream_id: Option<String>,
}

impl RawReply {
    /// True when `data` holds an exception to raise (and the reply is not a stream start).
    pub fn is_exception(&self) -> bool {
        self.flags & FLAGS_EXCEPTION != 0 && self.stream_id.is_none()
    }
}

/// Calls collected for one batch request (Pyro4's `batch(proxy)` / `_pyroBatch()`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    calls: Vec<Value>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Add a call: Pyro4 sends each as `(method, vargs, kwargs)`.
    pub fn call(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> &mut Batch {
        self.calls.push(Value::Tuple(vec![
            Value::str(method),
            Value::Tuple(args),
            Value::Dict(kwargs),
        ]));
        self
    }

    /// Number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no calls were added.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

fn global_config() -> Arc<Config> {
    static GLOBAL: OnceLock<Arc<Config>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| Arc::new(Config::global().clone()))
        .clone()
}

/// A proxy for one remote object, with one connection, used for one call at a time
/// (as Pyro4's proxy, which holds a lock for each call).
///
/// Behaviour follows Pyro4 4.82: the first call connects and handshakes (CONNECT with
/// metadata request), sequence numbers run on across reconnects, a communication error
/// drops the connection so the next call reconnects, `MAX_RETRIES` retries calls that
/// failed with a closed connection or a timeout, and method names unknown to the
/// remote object's metadata are refused locally with an `AttributeError`.
#[derive(Debug)]
pub struct Proxy {
    uri: Uri,
    config: Arc<Config>,
    conn: Option<Connection>,
    /// Object id the current connection was made for (the resolved one).
    object_id: String,
    serializer: SerializerKind,
    timeout: Option<Duration>,
    hmac_key: Option<Vec<u8>>,
    max_retries: u32,
    handshake: Value,
    handshake_response: Option<Value>,
    metadata_enabled: bool,
    limits: Limits,
    decode_limits: DecodeLimits,
    seq: u16,
    methods: HashSet<String>,
    oneway: HashSet<String>,
    attrs: HashSet<String>,
    annotations: Annotations,
    correlation_id: Option<Uuid>,
    response_annotations: Annotations,
    pending_stream_closes: Vec<String>,
}

impl Proxy {
    /// A proxy for a URI text, with the process-wide configuration
    /// ([`Config::global`], read from PYRO_* variables).
    pub fn new(uri: &str) -> Result<Proxy> {
        let config = global_config();
        let uri = Uri::parse_with_ns_port(uri, config.ns_port)?;
        Proxy::with_config(uri, config)
    }

    /// A proxy for a parsed URI with an explicit configuration (serializer, COMMTIMEOUT,
    /// MAX_RETRIES, METADATA, COMPRESSION, MAX_MESSAGE_SIZE and the name server settings
    /// are taken from it).
    pub fn with_config(uri: Uri, config: Arc<Config>) -> Result<Proxy> {
        let serializer = config.serializer_kind()?;
        check_supported(serializer)?;
        Ok(Proxy {
            object_id: uri.object.clone(),
            uri,
            conn: None,
            serializer,
            timeout: config.comm_timeout(),
            hmac_key: None,
            max_retries: config.max_retries,
            handshake: Value::str("hello"),
            handshake_response: None,
            metadata_enabled: config.metadata,
            limits: Limits {
                max_message_size: config.max_message_size,
                ..Limits::default()
            },
            decode_limits: DecodeLimits::default(),
            seq: 0,
            methods: HashSet::new(),
            oneway: HashSet::new(),
            attrs: HashSet::new(),
            annotations: Annotations::new(),
            correlation_id: None,
            response_annotations: Annotations::new(),
            pending_stream_closes: Vec::new(),
            config,
        })
    }

    /// A proxy rebuilt from the state a serialized Pyro4 Proxy carries (autoproxy
    /// results): URI, metadata, timeout, HMAC key, handshake, retries and serializer.
    pub fn from_state(state: &ProxyState, config: Arc<Config>) -> Result<Proxy> {
        let mut p = Proxy::with_config(state.uri.clone(), config)?;
        p.oneway = state.oneway.iter().cloned().collect();
        p.methods = state.methods.iter().cloned().collect();
        p.attrs = state.attrs.iter().cloned().collect();
        p.timeout = seconds(state.timeout);
        p.hmac_key = state.hmac_key.clone().filter(|k| !k.is_empty());
        p.handshake = state.handshake.clone();
        p.max_retries = u32::try_from(state.max_retries.max(0)).unwrap_or(u32::MAX);
        if let Some(kind) = state
            .serializer
            .as_deref()
            .and_then(SerializerKind::from_name)
        {
            if kind.is_supported() {
                p.serializer = kind;
            }
        }
        Ok(p)
    }

    /// An unconnected proxy with the same URI, settings and known metadata (Pyro4's
    /// `copy.copy(proxy)`).
    pub fn duplicate(&self) -> Proxy {
        Proxy {
            uri: self.uri.clone(),
            config: self.config.clone(),
            conn: None,
            object_id: self.uri.object.clone(),
            serializer: self.serializer,
            timeout: self.timeout,
            hmac_key: self.hmac_key.clone(),
            max_retries: self.max_retries,
            handshake: self.handshake.clone(),
            handshake_response: None,
            metadata_enabled: self.metadata_enabled,
            limits: self.limits,
            decode_limits: self.decode_limits,
            seq: 0,
            methods: self.methods.clone(),
            oneway: self.oneway.clone(),
            attrs: self.attrs.clone(),
            annotations: self.annotations.clone(),
            correlation_id: self.correlation_id,
            response_annotations: Annotations::new(),
            pending_stream_closes: Vec::new(),
        }
    }

    // ---- settings -------------------------------------------------------------------

    /// The URI (the resolved `PYRO:` one after [`Proxy::bind`]).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// The configuration this proxy was made with.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }
    /// The serializer used for requests (`_pyroSerializer`).
    pub fn serializer(&self) -> SerializerKind {
        self.serializer
    }
    /// Use another serializer from the next message on. The daemon must accept it.
    pub fn set_serializer(&mut self, kind: SerializerKind) -> Result<()> {
        check_supported(kind)?;
        if kind != self.serializer {
            // The connection's handshake was made with the old serializer; Pyro4 keeps
            // the connection, and so do we: the daemon takes each message's own id.
            self.serializer = kind;
        }
        Ok(())
    }
    /// Timeout for connecting and for each call (`_pyroTimeout`); None = wait forever.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    /// Set the timeout (`_pyroTimeout`).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout.filter(|d| !d.is_zero());
    }
    /// The HMAC key (`_pyroHmacKey`).
    pub fn hmac_key(&self) -> Option<&[u8]> {
        self.hmac_key.as_deref()
    }
    /// Set the HMAC key; None or empty = no HMAC. Applies to the open connection too.
    pub fn set_hmac_key(&mut self, key: Option<Vec<u8>>) {
        self.hmac_key = key.filter(|k| !k.is_empty());
        let (limits, key) = (self.limits, self.hmac_key.clone());
        if let Some(conn) = self.conn.as_mut() {
            conn.set_hmac_key(limits, key);
        }
    }
    /// Automatic retries (`_pyroMaxRetries`).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }
    /// Set the automatic retries.
    pub fn set_max_retries(&mut self, n: u32) {
        self.max_retries = n;
    }
    /// Data sent in the connection handshake (`_pyroHandshake`, default `"hello"`).
    pub fn set_handshake(&mut self, data: Value) {
        self.handshake = data;
    }
    /// What the daemon answered in the last handshake.
    pub fn handshake_response(&self) -> Option<&Value> {
        self.handshake_response.as_ref()
    }
    /// Whether metadata is requested on connect and names are checked locally
    /// (config METADATA).
    pub fn metadata_enabled(&self) -> bool {
        self.metadata_enabled
    }
    /// Turn metadata handling on or off.
    pub fn set_metadata_enabled(&mut self, on: bool) {
        self.metadata_enabled = on;
    }
    /// The correlation id sent as CORR annotation with every message (None = none).
    pub fn set_correlation_id(&mut self, id: Option<Uuid>) {
        self.correlation_id = id;
    }
    /// The correlation id.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.correlation_id
    }
    /// User annotations sent with every message (Pyro4's `_pyroAnnotations()`).
    pub fn annotations_mut(&mut self) -> &mut Annotations {
        &mut self.annotations
    }
    /// Annotations of the last reply (Pyro4's `current_context.response_annotations`).
    pub fn response_annotations(&self) -> &Annotations {
        &self.response_annotations
    }
    /// Limits applied to received payloads.
    pub fn set_decode_limits(&mut self, limits: DecodeLimits) {
        self.decode_limits = limits;
    }
    /// The current sequence number (`_pyroSeq`).
    pub fn seq(&self) -> u16 {
        self.seq
    }
    /// Method names from the metadata.
    pub fn methods(&self) -> &HashSet<String> {
        &self.methods
    }
    /// Oneway method names from the metadata.
    pub fn oneway_methods(&self) -> &HashSet<String> {
        &self.oneway
    }
    /// Attribute names from the metadata.
    pub fn attributes(&self) -> &HashSet<String> {
        &self.attrs
    }
    /// Mark methods as oneway locally (in addition to the metadata).
    pub fn add_oneway(&mut self, method: &str) {
        self.oneway.insert(method.to_string());
    }
    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    // ---- connection -----------------------------------------------------------------

    /// Connect (if not connected) and replace a `PYRONAME:`/`PYROMETA:` URI by the
    /// resolved `PYRO:` one (Pyro4's `_pyroBind`). Returns true if a new connection was
    /// made.
    pub async fn bind(&mut self) -> Result<bool> {
        self.connect(true).await
    }

    /// Close the connection (`_pyroRelease`); the next call reconnects.
    pub fn release(&mut self) {
        if self.conn.take().is_some() {
            tracing::debug!("connection released");
        }
    }

    /// Release and connect again, trying up to `tries` times, 2 s apart, while the
    /// failure is a communication error (Pyro4's `_pyroReconnect`).
    pub async fn reconnect(&mut self, tries: u32) -> Result<()> {
        self.release();
        let mut left = tries;
        while left > 0 {
            match self.connect(false).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_communication_error() => {
                    left -= 1;
                    if left > 0 {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::ConnectionClosed("failed to reconnect".into()))
    }

    /// The `PYRO:` URI this proxy connects to: `PYRONAME:`/`PYROMETA:` are resolved
    /// through the name server, with this proxy's HMAC key (Pyro4's `_resolve`).
    pub async fn resolve(&self) -> Result<Uri> {
        resolve_uri(&self.uri, &self.config, self.hmac_key.as_deref()).await
    }

    async fn connect(&mut self, replace_uri: bool) -> Result<bool> {
        if self.conn.is_some() {
            return Ok(false);
        }
        let uri = self.resolve().await?;
        let location = uri
            .location
            .clone()
            .ok_or_else(|| Error::Pyro(format!("invalid uri (no location): {}", uri.object)))?;
        let loc_text = location_text(&location);
        let outcome = match self.timeout {
            Some(t) => tokio::time::timeout(t, self.handshake(&uri.object, &location, &loc_text))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout(format!(
                        "cannot connect to {loc_text}: timed out"
                    )))
                }),
            None => self.handshake(&uri.object, &location, &loc_text).await,
        };
        let (conn, meta) = outcome?;
        if let Some(meta) = meta {
            self.process_metadata(&meta)?;
        }
        self.conn = Some(conn);
        self.object_id = uri.object.clone();
        if replace_uri {
            self.uri = uri;
        }
        if self.metadata_enabled && self.methods.is_empty() && self.attrs.is_empty() {
            let object = self.object_id.clone();
            self.fetch_metadata(&object).await?;
        }
        Ok(true)
    }

    /// Connect, send CONNECT and read CONNECTOK/CONNECTFAIL (Pyro4's
    /// `connect_and_handshake`). Returns the connection and the metadata, if the
    /// daemon sent it along.
    async fn handshake(
        &mut self,
        object: &str,
        location: &Location,
        loc_text: &str,
    ) -> Result<(Connection, Option<Value>)> {
        let mut conn = Connection::connect_with_config(
            location,
            self.limits,
            self.hmac_key.clone(),
            &self.config,
        )
        .await?;
        let mut data = Dict::new();
        data.set("handshake", self.handshake.clone());
        let mut flags = 0;
        if self.metadata_enabled {
            // The resolved object id, so the daemon can send its metadata right away.
            data.set("object", Value::str(object));
            flags |= FLAGS_META_ON_CONNECT;
        }
        let payload = self.serializer.encode(&Value::Dict(data))?;
        let mut msg = Message::new(MsgType::Connect, self.seq, self.serializer.id(), payload);
        msg.flags = flags;
        msg.annotations = self.request_annotations(None);
        let bytes = msg.encode(
            self.config.compression,
            self.hmac_key.as_deref(),
            self.limits.max_message_size,
        )?;
        let reply = async {
            conn.send(&bytes).await?;
            conn.recv_expected().await
        }
        .await
        .map_err(|e| {
            // Pyro4 re-raises CommunicationErrors and wraps anything else (e.g. the
            // SecurityError of a mismatching HMAC) as "cannot connect to ...".
            if e.is_communication_error() {
                e
            } else {
                Error::Communication(format!("cannot connect to {loc_text}: {e}"))
            }
        })?;
        // The reply is decoded with the serializer named in *its* header: a daemon that
        // fails early answers in marshal whatever the client used.
        let decoded: Result<Value> = if reply.data.is_empty() {
            Ok(Value::str("?"))
        } else {
            match SerializerKind::from_id(reply.serializer_id).filter(|k| k.is_supported()) {
                Some(kind) => kind
                    .decode(&reply.data, &self.decode_limits)
                    .map_err(Error::from),
                None => Err(Error::Serialize(format!(
                    "unsupported serializer id {}",
                    reply.serializer_id
                ))),
            }
        };
        match reply.msg_type {
            MsgType::ConnectFail => {
                let reason = match decoded {
                    Ok(v) => PyStr(&v).to_string(),
                    Err(_) => format!(
                        "<reason could not be decoded (serializer id {})>",
                        reply.serializer_id
                    ),
                };
                Err(Error::Communication(format!(
                    "connection to {loc_text} rejected: {reason}"
                )))
            }
            MsgType::ConnectOk => {
                let response = decoded?;
                self.response_annotations = reply.annotations;
                if reply.flags & FLAGS_META_ON_CONNECT != 0 {
                    let mut dict = match response {
                        Value::Dict(d) => d,
                        other => {
                            return Err(Error::Protocol(format!(
                                "invalid handshake response with metadata: {}",
                                other.type_name()
                            )))
                        }
                    };
                    let meta = dict.remove_str("meta").ok_or_else(|| {
                        Error::Protocol("handshake response without metadata".into())
                    })?;
                    self.handshake_response =
                        Some(dict.remove_str("handshake").unwrap_or(Value::None));
                    Ok((conn, Some(meta)))
                } else {
                    self.handshake_response = Some(response);
                    Ok((conn, None))
                }
            }
            other => Err(Error::Protocol(format!(
                "cannot connect to {loc_text}: invalid msg type {} received",
                other as u16
            ))),
        }
    }

    /// Apply a metadata dict `{'methods', 'oneway', 'attrs'}` (sets, lists or tuples).
    fn process_metadata(&mut self, meta: &Value) -> Result<()> {
        let dict = match meta {
            Value::Dict(d) => d,
            Value::None => return Ok(()),
            other => {
                return Err(Error::Protocol(format!(
                    "invalid metadata: {}",
                    other.type_name()
                )))
            }
        };
        let names = |key: &str| -> HashSet<String> {
            dict.get_str(key)
                .and_then(Value::as_seq)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        self.oneway = names("oneway");
        self.methods = names("methods");
        self.attrs = names("attrs");
        if self.methods.is_empty() && self.attrs.is_empty() {
            return Err(Error::Pyro(
                "remote object doesn't expose any methods or attributes. Did you forget setting @expose on them?"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Ask the daemon for the object's metadata (`Pyro.Daemon.get_metadata`) and apply
    /// it (Pyro4's `_pyroGetMetadata`).
    pub async fn get_metadata(&mut self) -> Result<()> {
        if self.conn.is_none() {
            self.connect(false).await?;
            if !self.methods.is_empty() || !self.attrs.is_empty() {
                return Ok(());
            }
        }
        let object = self.object_id.clone();
        self.fetch_metadata(&object).await
    }

    async fn fetch_metadata(&mut self, object: &str) -> Result<()> {
        let mut call = Call {
            object: DAEMON_NAME.into(),
            method: "get_metadata".into(),
            args: vec![Value::str(object)],
            kwargs: Some(Dict::new()),
        };
        match self.invoke_call(Some(DAEMON_NAME), &mut call, 0).await? {
            Reply::Value(meta) => self.process_metadata(&meta),
            Reply::Stream(id) => Err(self.unexpected_stream(id)),
        }
    }

    async fn ensure_metadata(&mut self) -> Result<()> {
        if self.metadata_enabled && self.methods.is_empty() && self.attrs.is_empty() {
            self.get_metadata().await?;
        }
        Ok(())
    }

    // ---- calls ----------------------------------------------------------------------

    /// Call a remote method and return its result. Methods in the metadata's oneway set
    /// are sent oneway and return None at once. With METADATA on, a name the object
    /// does not expose gives a local `AttributeError`. Retries per MAX_RETRIES. A method
    /// returning an iterator gives a `ProtocolError` here: use [`Proxy::call_stream`].
    pub async fn call(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> Result<Value> {
        match self.call_reply(method, args, kwargs).await? {
            Reply::Value(v) => Ok(v),
            Reply::Stream(id) => Err(self.unexpected_stream(id)),
        }
    }

    /// Like [`Proxy::call`], but a remote iterator comes back as [`Reply::Stream`].
    pub async fn call_reply(
        &mut self,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<Reply> {
        self.ensure_metadata().await?;
        if self.metadata_enabled && !self.methods.contains(method) {
            return Err(Error::Attribute(format!(
                "remote object '{}' has no exposed attribute or method '{method}'",
                self.uri
            )));
        }
        let mut call = Call {
            object: String::new(),
            method: method.to_string(),
            args,
            kwargs: Some(kwargs),
        };
        let mut attempt = 0;
        loop {
            match self.invoke_call(None, &mut call, 0).await {
                Err(e) if e.is_retryable() && attempt < self.max_retries => attempt += 1,
                other => return other,
            }
        }
    }

    /// Call a method that returns an iterator and stream its items.
    pub async fn call_stream(
        &mut self,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<ItemStream<'_>> {
        match self.call_reply(method, args, kwargs).await? {
            Reply::Stream(id) => Ok(ItemStream {
                proxy: self,
                id,
                finished: false,
            }),
            Reply::Value(v) => Err(Error::Protocol(format!(
                "result of call is not an iterator but a {}",
                v.type_name()
            ))),
        }
    }

    /// Send a call oneway, whatever the metadata says: no reply is read.
    pub async fn call_oneway(
        &mut self,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<()> {
        let mut call = Call {
            object: String::new(),
            method: method.to_string(),
            args,
            kwargs: Some(kwargs),
        };
        self.invoke_call(None, &mut call, FLAGS_ONEWAY)
            .await
            .map(|_| ())
    }

    /// One invocation as Pyro4's `_pyroInvoke(method, vargs, kwargs, flags, objectId)`:
    /// no metadata check and no retries. `object` None = this proxy's object.
    pub async fn invoke(
        &mut self,
        object: Option<&str>,
        method: &str,
        args: Vec<Value>,
        kwargs: Option<Dict>,
        flags: u16,
    ) -> Result<Reply> {
        let mut call = Call {
            object: String::new(),
            method: method.to_string(),
            args,
            kwargs,
        };
        self.invoke_call(object, &mut call, flags).await
    }

    /// Read a remote attribute (an exposed property): `__getattr__` with kwargs None.
    pub async fn get_attr(&mut self, name: &str) -> Result<Value> {
        self.ensure_metadata().await?;
        if self.metadata_enabled && !self.attrs.contains(name) {
            return Err(Error::Attribute(format!(
                "remote object '{}' has no exposed attribute or method '{name}'",
                self.uri
            )));
        }
        match self
            .invoke(None, "__getattr__", vec![Value::str(name)], None, 0)
            .await?
        {
            Reply::Value(v) => Ok(v),
            Reply::Stream(id) => Err(self.unexpected_stream(id)),
        }
    }

    /// Write a remote attribute (an exposed property setter): `__setattr__`.
    pub async fn set_attr(&mut self, name: &str, value: Value) -> Result<()> {
        self.ensure_metadata().await?;
        if self.metadata_enabled && !self.attrs.contains(name) {
            return Err(Error::Attribute(format!(
                "remote object '{}' has no exposed attribute '{name}'",
                self.uri
            )));
        }
        match self
            .invoke(None, "__setattr__", vec![Value::str(name), value], None, 0)
            .await?
        {
            Reply::Value(_) => Ok(()),
            Reply::Stream(id) => Err(self.unexpected_stream(id)),
        }
    }

    /// `Pyro.Daemon.ping()`: checks the connection end to end (connects if needed).
    pub async fn ping(&mut self) -> Result<()> {
        self.invoke(Some(DAEMON_NAME), "ping", Vec::new(), Some(Dict::new()), 0)
            .await
            .map(|_| ())
    }

    /// Run a batch: one request, one result per call in order. A call that raised is
    /// an `Err` at its position, and the daemon skips the calls after it (Pyro4's
    /// `_ExceptionWrapper` elements, re-raised where they appear).
    pub async fn run_batch(&mut self, batch: Batch) -> Result<Vec<Result<Value>>> {
        let mut call = batch_call(batch);
        match self.invoke_call(None, &mut call, FLAGS_BATCH).await? {
            Reply::Value(Value::List(items)) | Reply::Value(Value::Tuple(items)) => Ok(items
                .into_iter()
                .map(|item| match envelope::exception_wrapper_from_value(&item) {
                    Some(exc) => Err(Error::remote_exception(exc)),
                    None => Ok(item),
                })
                .collect()),
            Reply::Value(other) => Err(Error::Protocol(format!(
                "batch result is not a list but a {}",
                other.type_name()
            ))),
            Reply::Stream(id) => Err(self.unexpected_stream(id)),
        }
    }

    /// Send a batch oneway: nothing comes back.
    pub async fn run_batch_oneway(&mut self, batch: Batch) -> Result<()> {
        let mut call = batch_call(batch);
        self.invoke_call(None, &mut call, FLAGS_BATCH | FLAGS_ONEWAY)
            .await
            .map(|_| ())
    }

    /// Next item of a remote iterator; None when it is exhausted (the daemon raised
    /// StopIteration and has dropped the stream).
    pub async fn stream_next(&mut self, stream_id: &str) -> Result<Option<Value>> {
        if self.conn.is_none() {
            return Err(Error::ConnectionClosed(
                "the proxy for this stream result has been closed".into(),
            ));
        }
        let reply = self
            .invoke(
                Some(DAEMON_NAME),
                "get_next_stream_item",
                vec![Value::str(stream_id)],
                Some(Dict::new()),
                0,
            )
            .await;
        match reply {
            Ok(Reply::Value(v)) => Ok(Some(v)),
            Ok(Reply::Stream(id)) => Err(self.unexpected_stream(id)),
            Err(Error::Remote(r)) if STOP_CLASSES.contains(&r.class_name.as_str()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tell the daemon to drop a stream (`close_stream`, always oneway). Does nothing
    /// when not connected: the daemon drops the streams of a closed connection itself.
    pub async fn stream_close(&mut self, stream_id: &str) -> Result<()> {
        if self.conn.is_none() {
            return Ok(());
        }
        self.invoke(
            Some(DAEMON_NAME),
            "close_stream",
            vec![Value::str(stream_id)],
            Some(Dict::new()),
            FLAGS_ONEWAY,
        )
        .await
        .map(|_| ())
    }

    /// Remember a stream to close with the next message (used where no await is
    /// possible, e.g. when an [`ItemStream`] is dropped early).
    pub fn close_stream_later(&mut self, stream_id: String) {
        self.pending_stream_closes.push(stream_id);
    }

    fn unexpected_stream(&mut self, id: String) -> Error {
        self.pending_stream_closes.push(id);
        Error::Protocol("result of call is an iterator: use Proxy::call_stream".into())
    }

    // ---- raw payloads ---------------------------------------------------------------

    /// Connect if not connected (handshake, metadata) and return the object id a request
    /// payload must name: the resolved one for a `PYRONAME:`/`PYROMETA:` URI, which is
    /// only known after connecting (Pyro4's `_pyroInvoke` likewise serializes the call
    /// after connecting, with `self._pyroConnection.objectId`). The URI is not replaced
    /// (that is [`Proxy::bind`]).
    pub async fn connect_for_call(&mut self) -> Result<&str> {
        if self.conn.is_none() {
            self.connect(false).await?;
        }
        Ok(&self.object_id)
    }

    /// The object id calls go to: the resolved one once connected, else the URI's.
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// Send one INVOKE whose payload the caller serialized, and return the reply
    /// undecoded. This is Pyro4's `_pyroInvoke` minus the serializer: the same
    /// connection, handshake (made with this proxy's own serializer, through the
    /// [`Value`] path), sequence numbers, annotations (the proxy's, its correlation id,
    /// then `extra_annotations`), COMPRESSION, HMAC, timeout, and release of the
    /// connection after a communication error. No retries (see [`Proxy::call_raw`]), no
    /// metadata check and no oneway lookup: the caller decides `flags`.
    ///
    /// - `flags`: FLAGS_ONEWAY, FLAGS_BATCH, ... as sent (FLAGS_COMPRESSED is ignored:
    ///   the proxy compresses `payload` itself when COMPRESSION is on).
    /// - `serializer_id`: the format of `payload` (serpent 1, json 2, marshal 3, pickle
    ///   4, ...); the daemon must accept it, and answers in it. It need not be this
    ///   proxy's serializer (Pyro4's daemon takes each message's own id).
    /// - `payload`: the call in that serializer's shape, `(object, method, vargs,
    ///   kwargs)` (a dict for json). `object` must be the id from
    ///   [`Proxy::connect_for_call`] (or `Pyro.Daemon` for daemon calls).
    ///
    /// Returns None for a oneway call (nothing is read), else the [`RawReply`]. A reply
    /// flagged as an exception is still `Ok`: decoding and raising it is the caller's
    /// job ([`RawReply::is_exception`]); when it is a Pyro4 `CommunicationError` (or a
    /// subclass), call [`Proxy::release`] as Pyro4 does before raising it. A remote
    /// iterator comes back with its `stream_id`; a stream start without one is the
    /// ProtocolError Pyro4 raises.
    pub async fn invoke_raw(
        &mut self,
        flags: u16,
        serializer_id: u16,
        payload: &[u8],
        extra_annotations: Option<&Annotations>,
    ) -> Result<Option<RawReply>> {
        self.response_annotations = Annotations::new();
        self.ensure_connection().await?;
        let mut bytes = self.pending_closes()?;
        let (request, split) = self.frame_invoke(
            serializer_id,
            payload,
            flags,
            extra_annotations,
            SPLIT_WRITE_ABOVE,
        )?;
        append(&mut bytes, request);
        let tail = if split { payload } else { &[] };
        let Some(received) = self
            .exchange(bytes, tail, flags & FLAGS_ONEWAY != 0)
            .await?
        else {
            return Ok(None);
        };
        let (msg, data) = received.into_parts();
        let checked = self.check_reply(&msg, serializer_id).and_then(|()| {
            if msg.flags & FLAGS_ITEMSTREAMRESULT != 0 {
                stream_id_of(&msg.annotations).map(Some)
            } else {
                Ok(None)
            }
        });
        let stream_id = self.release_on_communication_error(checked)?;
        // Kept on the proxy as for every call (a handful of small chunks).
        self.response_annotations = msg.annotations.clone();
        Ok(Some(RawReply {
            flags: msg.flags,
            serializer_id: msg.serializer_id,
            data,
            annotations: msg.annotations,
            stream_id,
        }))
    }

    /// [`Proxy::invoke_raw`] with this proxy's automatic retries: a call that failed with
    /// a closed connection or a timeout is sent again (on a new connection) up to
    /// `max_retries` times, as Pyro4's `_RemoteMethod.__call__` does. The same payload is
    /// resent, so it must not depend on the connection (a `PYROMETA:` URI that resolves
    /// to another object on reconnect keeps the old object id).
    pub async fn call_raw(
        &mut self,
        flags: u16,
        serializer_id: u16,
        payload: &[u8],
        extra_annotations: Option<&Annotations>,
    ) -> Result<Option<RawReply>> {
        let mut attempt = 0;
        loop {
            match self
                .invoke_raw(flags, serializer_id, payload, extra_annotations)
                .await
            {
                Err(e) if e.is_retryable() && attempt < self.max_retries => attempt += 1,
                other => return other,
            }
        }
    }

    // ---- the invocation core --------------------------------------------------------

    fn request_annotations(&self, extra: Option<&Annotations>) -> Annotations {
        // Pyro4's Proxy.__annotations: the context's annotations, CORR, then the ones
        // `_pyroAnnotations()` returns.
        let mut annotations = self.annotations.clone();
        if let Some(corr) = self.correlation_id {
            annotations.insert(ANNOTATION_CORR, corr.as_bytes().to_vec());
        }
        if let Some(extra) = extra {
            for (id, value) in extra.iter() {
                annotations.insert(*id, value.to_vec());
            }
        }
        annotations
    }

    /// Frame one INVOKE around an encoded payload; increments the sequence number first
    /// (Pyro4 does too, also for oneway calls). With `true`, the bytes are only the
    /// header and annotations and `payload` must follow them: a plain payload longer than
    /// `split_above` is framed by [`Connection::send_parts`] in the connection's kept
    /// buffer, not in a fresh one.
    fn frame_invoke(
        &mut self,
        serializer_id: u16,
        payload: &[u8],
        flags: u16,
        extra: Option<&Annotations>,
        split_above: usize,
    ) -> Result<(Vec<u8>, bool)> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Message::new(MsgType::Invoke, self.seq, serializer_id, Vec::new());
        msg.flags = flags;
        msg.annotations = self.request_annotations(extra);
        let key = self.hmac_key.as_deref();
        let max = self.limits.max_message_size;
        // Pyro4's COMPRESSION rule (>= 200 bytes and smaller); sets FLAGS_COMPRESSED.
        let packed = if self.config.compression {
            compress_payload(payload)
        } else {
            None
        };
        Ok(match packed {
            Some(packed) => (msg.encode_prepared(&packed, true, key, max)?, false),
            None if payload.len() > split_above => {
                (msg.encode_head(payload, false, key, max)?, true)
            }
            None => (msg.encode_prepared(payload, false, key, max)?, false),
        })
    }

    /// Encode one INVOKE of a [`Call`] in this proxy's serializer.
    fn encode_invoke(&mut self, call: &mut Call, flags: u16) -> Result<Vec<u8>> {
        let payload = encode_call_in_place(self.serializer, call)?;
        self.frame_invoke(self.serializer.id(), &payload, flags, None, usize::MAX)
            .map(|(bytes, _)| bytes)
    }

    /// Connect if needed (Pyro4's `_pyroInvoke` connects first).
    async fn ensure_connection(&mut self) -> Result<()> {
        if self.conn.is_none() {
            // Boxed: connecting may itself invoke (get_metadata), which recurses here.
            Box::pin(self.connect(false)).await?;
        }
        Ok(())
    }

    /// Oneway `close_stream` messages for streams dropped early; they are written
    /// together with the next request.
    fn pending_closes(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        for id in std::mem::take(&mut self.pending_stream_closes) {
            let mut close = Call {
                object: DAEMON_NAME.into(),
                method: "close_stream".into(),
                args: vec![Value::Str(id)],
                kwargs: Some(Dict::new()),
            };
            bytes.extend_from_slice(&self.encode_invoke(&mut close, FLAGS_ONEWAY)?);
        }
        Ok(bytes)
    }

    /// Write the request bytes and, unless oneway, read the reply, within the timeout.
    /// A communication error drops the connection: Pyro4 releases it because a reply
    /// may still be in flight, which a later call must not read as its own.
    async fn exchange(
        &mut self,
        bytes: Vec<u8>,
        tail: &[u8],
        oneway: bool,
    ) -> Result<Option<Received>> {
        let timeout = self.timeout;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::ConnectionClosed("not connected".into()))?;
        let exchange = async {
            conn.send_parts(&bytes, tail).await?;
            if oneway {
                Ok(None)
            } else {
                match conn.recv_shared(SPLIT_WRITE_ABOVE).await? {
                    Some(received) => Ok(Some(received)),
                    None => Err(Error::ConnectionClosed("receiving: not enough data".into())),
                }
            }
        };
        let outcome = match timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .unwrap_or_else(|_| Err(Error::Timeout("receiving: timeout".into()))),
            None => exchange.await,
        };
        if let Err(e) = &outcome {
            if e.is_communication_error() {
                self.release();
            }
        }
        outcome
    }

    /// The checks of every reply: MSG_RESULT, our sequence number, the request's
    /// serializer (Pyro4's `__pyroCheckSequence` and "invalid serializer in response").
    fn check_reply(&self, msg: &Message, serializer_id: u16) -> Result<()> {
        let error = if msg.msg_type != MsgType::Result {
            Error::Protocol(format!("invalid msg type {} received", msg.msg_type as u16))
        } else if msg.seq != self.seq {
            Error::Protocol(format!(
                "invoke: reply sequence out of sync, got {} expected {}",
                msg.seq, self.seq
            ))
        } else if msg.serializer_id != serializer_id {
            Error::Serialize(format!(
                "invalid serializer in response: {}",
                msg.serializer_id
            ))
        } else {
            return Ok(());
        };
        Err(error)
    }

    /// Pyro4's `except CommunicationError: self._pyroRelease(); raise` around the
    /// exchange and the handling of its reply: a communication error, including a
    /// remote exception of a CommunicationError class, drops the connection so a later
    /// call cannot read a stale answer.
    fn release_on_communication_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.is_communication_error() {
                self.release();
            }
        }
        result
    }

    async fn invoke_call(
        &mut self,
        object: Option<&str>,
        call: &mut Call,
        mut flags: u16,
    ) -> Result<Reply> {
        self.response_annotations = Annotations::new();
        self.ensure_connection().await?;
        let object = object.unwrap_or(&self.object_id);
        if call.object != object {
            call.object = object.to_string();
        }
        if self.oneway.contains(&call.method) {
            flags |= FLAGS_ONEWAY;
        }
        let mut bytes = self.pending_closes()?;
        let request = self.encode_invoke(call, flags)?;
        append(&mut bytes, request);
        let result = match self.exchange(bytes, &[], flags & FLAGS_ONEWAY != 0).await {
            Ok(None) => Ok(Reply::Value(Value::None)),
            Ok(Some(received)) => self.process_reply(received),
            Err(e) => Err(e),
        };
        self.release_on_communication_error(result)
    }

    fn process_reply(&mut self, received: Received) -> Result<Reply> {
        let msg = &received.msg;
        self.check_reply(msg, self.serializer.id())?;
        let flags = msg.flags;
        let value = self
            .serializer
            .decode(received.payload(), &self.decode_limits);
        self.response_annotations = received.msg.annotations;
        let value = value?;
        // A stream start is flagged as an exception too: test for it first.
        if flags & FLAGS_ITEMSTREAMRESULT != 0 {
            return Ok(Reply::Stream(stream_id_of(&self.response_annotations)?));
        }
        if flags & FLAGS_EXCEPTION != 0 {
            return Err(exception_error(&value));
        }
        Ok(Reply::Value(envelope::recreate_classes(value)))
    }

    /// The error an exception reply of [`Proxy::invoke_raw`] stands for, decoded with
    /// this proxy's limits: the same error [`Proxy::invoke`] returns for that reply. A
    /// communication error (a remote one too) releases the connection, as Pyro4 does.
    /// For callers that decode normal replies themselves (the Python bindings build
    /// Python objects straight from serpent) and leave exceptions to the runtime.
    pub fn raw_reply_error(&mut self, reply: &RawReply) -> Error {
        let error = match SerializerKind::from_id(reply.serializer_id) {
            Some(kind) => match kind.decode(&reply.data, &self.decode_limits) {
                Ok(value) => exception_error(&value),
                Err(e) => e.into(),
            },
            None => Error::Serialize(format!(
                "invalid serializer in response: {}",
                reply.serializer_id
            )),
        };
        if error.is_communication_error() {
            self.release();
        }
        error
    }

    /// The limits replies are decoded with.
    pub fn decode_limits(&self) -> &DecodeLimits {
        &self.decode_limits
    }
}

/// The error of an exception reply's decoded payload.
fn exception_error(value: &Value) -> Error {
    match RemoteException::from_value(value) {
        Some(exc) => Error::remote_exception(exc),
        None => Error::Protocol(format!(
            "exception reply does not hold an exception but a {}",
            value.type_name()
        )),
    }
}

/// Append `request` to the stream closes written before it (usually there are none,
/// and the request is taken as is).
fn append(bytes: &mut Vec<u8>, request: Vec<u8>) {
    if bytes.is_empty() {
        *bytes = request;
    } else {
        bytes.extend_from_slice(&request);
    }
}

/// The STRM annotation of a stream-start reply (Pyro4:
/// `bytes(msg.annotations.get("STRM", b"")).decode()`, empty = streaming is off).
fn stream_id_of(annotations: &Annotations) -> Result<String> {
    let id = annotations
        .get(&ANNOTATION_STRM)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    if id.is_empty() {
        return Err(Error::Protocol(
            "result of call is an iterator, but the server is not configured to allow streaming"
                .into(),
        ));
    }
    Ok(id)
}

/// [`envelope::encode_call`] without copying the arguments: for the tuple shapes
/// (serpent, pickle and its kin) and json's dict, the call's fields are moved into the
/// payload value for encoding and moved back afterwards, so retries can resend the call.
/// The bytes are the same as `encode_call`'s (tested).
fn encode_call_in_place(kind: SerializerKind, call: &mut Call) -> Result<Vec<u8>> {
    let tuple_shape = matches!(
        kind,
        SerializerKind::Serpent
            | SerializerKind::Pickle
            | SerializerKind::Dill
            | SerializerKind::Cloudpickle
    );
    if !tuple_shape && kind != SerializerKind::Json {
        // marshal encodes from references already.
        return Ok(envelope::encode_call(kind, call)?);
    }
    let object = Value::Str(std::mem::take(&mut call.object));
    let method = Value::Str(std::mem::take(&mut call.method));
    let args = std::mem::take(&mut call.args);
    let kwargs = call.kwargs.take().map(Value::Dict).unwrap_or(Value::None);
    let value = if tuple_shape {
        // SerpentSerializer/PickleSerializer.dumpsCall: (obj, method, vargs tuple, kwargs).
        Value::Tuple(vec![object, method, Value::Tuple(args), kwargs])
    } else {
        // JsonSerializer.dumpsCall: this key order, vargs as a list.
        Value::Dict(Dict::from_unique_pairs(vec![
            (Value::str("object"), object),
            (Value::str("method"), method),
            (Value::str("params"), Value::List(args)),
            (Value::str("kwargs"), kwargs),
        ]))
    };
    let encoded = kind.encode(&value);
    // Move the fields back (the shapes were built just above, so every arm matches).
    let parts: Vec<Value> = match value {
        Value::Tuple(parts) => parts,
        Value::Dict(d) => d.into_entries().into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    let mut parts = parts.into_iter();
    if let Some(Value::Str(o)) = parts.next() {
        call.object = o;
    }
    if let Some(Value::Str(m)) = parts.next() {
        call.method = m;
    }
    if let Some(Value::Tuple(a) | Value::List(a)) = parts.next() {
        call.args = a;
    }
    if let Some(Value::Dict(k)) = parts.next() {
        call.kwargs = Some(k);
    }
    Ok(encoded?)
}

fn batch_call(batch: Batch) -> Call {
    // kwargs None, as Pyro4 sends for "<batch>".
    Call {
        object: String::new(),
        method: "<batch>".into(),
        args: batch.calls,
        kwargs: None,
    }
}

fn check_supported(kind: SerializerKind) -> Result<()> {
    if kind.is_supported() {
        Ok(())
    } else {
        Err(Error::Serialize(format!(
            "serializer '{}' is not available in pyro-rs",
            kind.name()
        )))
    }
}

/// Resolve a `PYRONAME:`/`PYROMETA:` URI to the `PYRO:` one (Pyro4's `core._resolve`);
/// a `PYRO:` URI is returned as is.
pub fn resolve_uri<'a>(
    uri: &'a Uri,
    config: &'a Arc<Config>,
    hmac_key: Option<&'a [u8]>,
) -> Pin<Box<dyn Future<Output = Result<Uri>> + Send + 'a>> {
    // Boxed: resolving makes a name server proxy, whose connect could resolve again.
    Box::pin(async move {
        let (host, port) = match &uri.location {
            None => (None, None),
            Some(Location::Tcp { host, port }) => (Some(host.clone()), Some(*port)),
            Some(Location::Unix(path)) => (Some(format!("./u:{path}")), None),
        };
        match uri.kind {
            UriKind::Pyro => Ok(uri.clone()),
            UriKind::PyroName => {
                let mut ns =
                    naming::locate_ns_with(config, host.as_deref(), port, true, hmac_key).await?;
                ns.lookup(&uri.object).await
            }
            UriKind::PyroMeta => {
                let mut ns =
                    naming::locate_ns_with(config, host.as_deref(), port, true, hmac_key).await?;
                let tags = uri.meta_tags();
                let candidates = ns.list(&naming::ListFilter::MetadataAll(tags)).await?;
                if candidates.is_empty() {
                    return Err(Error::Naming(format!(
                        "no registrations available with desired metadata properties {:?}",
                        uri.meta_tags()
                    )));
                }
                let pick = rand::random::<usize>() % candidates.len();
                let chosen = &candidates[pick].1;
                Ok(Uri::parse_with_ns_port(chosen, config.ns_port)?)
            }
        }
    })
}

/// A remote iterator (Pyro4's `_StreamResultIterator`): items are fetched one by one
/// with `get_next_stream_item`. Dropping it before the end queues a oneway
/// `close_stream` that goes out with the proxy's next message.
#[derive(Debug)]
pub struct ItemStream<'a> {
    proxy: &'a mut Proxy,
    id: String,
    finished: bool,
}

impl<'a> ItemStream<'a> {
    /// Wrap a stream id returned in a [`Reply::Stream`].
    pub fn new(proxy: &'a mut Proxy, id: String) -> ItemStream<'a> {
        ItemStream {
            proxy,
            id,
            finished: false,
        }
    }

    /// The stream id (a uuid4 string).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next item, None at the end.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        if self.finished {
            return Ok(None);
        }
        match self.proxy.stream_next(&self.id).await {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                // The daemon drops a stream whose iterator raised; nothing to close.
                if matches!(e, Error::Remote(_)) {
                    self.finished = true;
                }
                Err(e)
            }
        }
    }

    /// All remaining items.
    pub async fn collect(mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        while let Some(v) = self.next().await? {
            out.push(v);
        }
        Ok(out)
    }

    /// Stop early: sends `close_stream` oneway now.
    pub async fn close(mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.proxy.stream_close(&self.id).await
    }
}

impl Drop for ItemStream<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.proxy.close_stream_later(std::mem::take(&mut self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
    use crate::daemon::{DaemonBuilder, DaemonHandle};

    fn sample_call(kwargs: Option<Dict>) -> Call {
        Call {
            object: "obj".into(),
            method: "m".into(),
            args: vec![
                Value::Int(1),
                Value::str("two"),
                Value::List(vec![Value::Float(3.5), Value::None]),
            ],
            kwargs,
        }
    }

    #[test]
    fn in_place_call_encoding_matches_encode_call_and_restores_the_call() {
        let mut kw = Dict::new();
        kw.set("k", Value::Bool(true));
        for kind in [
            SerializerKind::Serpent,
            SerializerKind::Json,
            SerializerKind::Marshal,
            SerializerKind::Pickle,
            SerializerKind::Dill,
            SerializerKind::Cloudpickle,
        ] {
            for kwargs in [None, Some(Dict::new()), Some(kw.clone())] {
                let original = sample_call(kwargs);
                let expected = envelope::encode_call(kind, &original).expect("encode_call");
                let mut call = original.clone();
                let got = encode_call_in_place(kind, &mut call).expect("in place");
                assert_eq!(got, expected, "{kind:?}");
                assert_eq!(call, original, "{kind:?}: call not restored");
            }
        }
    }

    async fn daemon(accepted: &str) -> (DaemonHandle, tokio::task::JoinHandle<()>, Uri) {
        let config = Config {
            serializers_accepted: accepted.split(',').map(str::to_string).collect(),
            ..Config::default()
        };
        let daemon = DaemonBuilder::with_config(Arc::new(config))
            .host("127.0.0.1")
            .port(0)
            .bind()
            .await
            .expect("bind");
        let uri = daemon
            .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
            .expect("register");
        let handle = daemon.handle();
        let task = tokio::spawn(async move { daemon.run().await.expect("run") });
        (handle, task, uri)
    }

    fn proxy(uri: &Uri, serializer: &str) -> Proxy {
        let config = Config {
            serializer: serializer.into(),
            ..Config::default()
        };
        let mut p = Proxy::with_config(uri.clone(), Arc::new(config)).expect("proxy");
        p.set_timeout(Some(Duration::from_secs(10)));
        p
    }

    fn raw_call(kind: SerializerKind, object: &str, method: &str, args: Vec<Value>) -> Vec<u8> {
        envelope::encode_call(
            kind,
            &Call {
                object: object.into(),
                method: method.into(),
                args,
                kwargs: Some(Dict::new()),
            },
        )
        .expect("encode")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raw_invocations_share_the_proxy_machinery() {
        let (handle, task, uri) = daemon("serpent,marshal,json,pickle").await;
        let limits = DecodeLimits::default();
        // The handshake goes in serpent; the calls in whatever each payload is.
        let mut p = proxy(&uri, "serpent");
        let object = p.connect_for_call().await.expect("connect").to_string();
        assert_eq!(object, ECHO_OBJECT_NAME);
        let seq0 = p.seq();
        for kind in [
            SerializerKind::Serpent,
            SerializerKind::Pickle,
            SerializerKind::Json,
        ] {
            let sent = Value::List(vec![Value::Int(7), Value::str("x")]);
            let payload = raw_call(kind, &object, "echo", vec![sent.clone()]);
            let mut extra = Annotations::new();
            extra.insert(*b"XTRA", b"1".to_vec());
            let reply = p
                .invoke_raw(0, kind.id(), &payload, Some(&extra))
                .await
                .expect("invoke_raw")
                .expect("a reply");
            assert_eq!(reply.serializer_id, kind.id());
            assert!(!reply.is_exception());
            assert!(reply.annotations.contains(&ANNOTATION_CORR));
            assert_eq!(kind.decode(&reply.data, &limits).expect("decode"), sent);
        }
        assert_eq!(p.seq(), seq0.wrapping_add(3));
        // An exception reply comes back flagged, undecoded.
        let payload = raw_call(SerializerKind::Pickle, &object, "error", vec![]);
        let reply = p
            .call_raw(0, SerializerKind::Pickle.id(), &payload, None)
            .await
            .expect("call_raw")
            .expect("a reply");
        assert!(reply.is_exception());
        let exc = RemoteException::from_value(
            &SerializerKind::Pickle
                .decode(&reply.data, &limits)
                .expect("decode"),
        )
        .expect("exception dict");
        assert_eq!(exc.class_name, "builtins.ValueError");
        // A remote iterator: the stream id, then the items through the Value path.
        let payload = raw_call(SerializerKind::Serpent, &object, "generator", vec![]);
        let reply = p
            .invoke_raw(0, SerializerKind::Serpent.id(), &payload, None)
            .await
            .expect("invoke_raw")
            .expect("a reply");
        let id = reply.stream_id.clone().expect("stream id");
        assert!(!reply.is_exception());
        let items = ItemStream::new(&mut p, id).collect().await.expect("items");
        assert_eq!(items.len(), 3);
        // Oneway: nothing is read.
        let payload = raw_call(SerializerKind::Serpent, &object, "oneway_echo", vec![]);
        let none = p
            .invoke_raw(FLAGS_ONEWAY, SerializerKind::Serpent.id(), &payload, None)
            .await
            .expect("oneway");
        assert!(none.is_none());
        // A payload the daemon cannot decode gets the SerializeError, then the daemon
        // closes: the proxy reconnects for the next call.
        let bad = p
            .invoke_raw(0, SerializerKind::Pickle.id(), b"\x80\x02garbage", None)
            .await
            .expect("reply")
            .expect("a reply");
        assert!(bad.is_exception());
        let exc = RemoteException::from_value(
            &SerializerKind::Pickle
                .decode(&bad.data, &limits)
                .expect("decode"),
        )
        .expect("exception dict");
        assert_eq!(exc.class_name, "Pyro4.errors.SerializeError");
        // A CommunicationError class: the caller releases, as Pyro4's proxy does.
        assert!(p.is_connected());
        p.release();
        let again = p
            .call("echo", vec![Value::Int(1)], Dict::new())
            .await
            .expect("after reconnect");
        assert_eq!(again, Value::Int(1));
        handle.shutdown();
        task.await.expect("daemon task");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pickle_is_refused_unless_accepted() {
        let (handle, task, uri) = daemon("serpent,marshal,json").await;
        let mut p = proxy(&uri, "pickle");
        let err = p
            .call("echo", vec![Value::Int(1)], Dict::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Communication(_)), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("rejected: message used serializer that is not accepted: 4"),
            "{err}"
        );
        handle.shutdown();
        task.await.expect("daemon task");

        let (handle, task, uri) = daemon("serpent,pickle").await;
        for name in ["pickle", "dill", "cloudpickle"] {
            let mut p = proxy(&uri, name);
            let r = p
                .call("echo", vec![Value::Bytes(vec![0, 255])], Dict::new())
                .await;
            if name == "pickle" {
                assert_eq!(r.expect("pickle accepted"), Value::Bytes(vec![0, 255]));
            } else {
                // Pyro4 accepts each listed name's id only: dill (5) and cloudpickle (7)
                // are refused when only "pickle" is listed.
                let e = r.unwrap_err();
                assert!(e.to_string().contains("not accepted"), "{name}: {e}");
            }
        }
        handle.shutdown();
        task.await.expect("daemon task");
    }
}
