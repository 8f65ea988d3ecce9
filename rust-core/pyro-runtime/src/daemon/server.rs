//! One client connection on the daemon side: Pyro4's `Daemon._handshake` followed by
//! `Daemon.handleRequest` in a loop, on one tokio task.
//!
//! Reading is header first (so the message type and the size limit are checked before
//! the body is read, as Pyro4's `Message.recv` does) into one buffer reused for the
//! connection's life; the buffer only grows as bytes actually arrive. Any error in the
//! bytes themselves costs this connection only.

use super::dispatch::{
    is_private_attribute, CallContext, ClientAddr, ConnInfo, Dispatch, Fault, ItemIter, Outcome,
};
use super::{object, DaemonHandle, Shared, CONNECTION_LIMIT_REASON};
use crate::config::seconds;
use crate::connection::Stream;
use bytes::{Buf, BytesMut};
use pyro_codec::envelope::{self, Call};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use pyro_wire::{
    Annotations, Header, Limits, Message, MessageDecoder, MsgType, ANNOTATION_CORR,
    ANNOTATION_STRM, FLAGS_BATCH, FLAGS_EXCEPTION, FLAGS_ITEMSTREAMRESULT, FLAGS_KEEPSERIALIZED,
    FLAGS_META_ON_CONNECT, FLAGS_ONEWAY, HEADER_SIZE,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::connection::{INITIAL_BUFFER, MAX_RESERVE_STEP, SHRINK_ABOVE, SPLIT_WRITE_ABOVE};

/// The smallest reply buffer kept for a dispatcher's next result: below this the
/// allocator's free lists serve a fresh one as cheaply.
const KEEP_SPARE_FROM: usize = 64 * 1024;

/// Where a sent result's payload buffer is kept for the next result.
#[derive(Clone, Copy)]
enum KeepAs {
    /// The connection's own buffer, for the results it encodes.
    Out,
    /// The dispatcher's spare ([`CallContext::take_buffer`]), for large results it wrote
    /// itself ([`Outcome::Encoded`]), so a stream of them reuses one buffer.
    Spare,
}

/// Counts a connection as active while it lives (for the connection limit).
pub(crate) struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    pub(crate) fn new(shared: &Arc<Shared>) -> ActiveGuard {
        shared.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(shared.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why reading a message failed.
enum ReadError {
    /// End of stream, socket error or COMMTIMEOUT: the connection is gone (Pyro4's
    /// ConnectionClosedError / TimeoutError; no reply).
    Closed,
    /// Bytes that are not a valid Pyro4 message (header, size, annotations, HMAC, zlib).
    Invalid(pyro_wire::Error),
}

/// What a request produced.
enum Reply {
    /// Nothing to send (oneway).
    Nothing,
    /// A normal result; `true` for a batch result (FLAGS_BATCH).
    Value(Value, bool),
    /// A normal result, serialized by the dispatcher.
    Encoded(Vec<u8>),
    /// A remote iterator to register and announce.
    Stream(ItemIter),
}

struct Conn {
    handle: DaemonHandle,
    stream: Stream,
    buf: BytesMut,
    decoder: MessageDecoder,
    info: Arc<ConnInfo>,
    timeout: Option<Duration>,
    /// When the message being read must be complete (COMMTIMEOUT after its first wait).
    deadline: Option<tokio::time::Instant>,
    decode_limits: DecodeLimits,
    /// Bytes at the front of `buf` that belong to the message being handled: its body
    /// stays there while the request is decoded, and goes before the next read.
    consumed: usize,
    /// Where that message's plain payload is in `buf` (None: in the message's `data`).
    payload: Option<std::ops::Range<usize>>,
    /// The last result payload's buffer, kept (up to SHRINK_ABOVE) for the next one, so a
    /// stream of large results does not allocate, and fault in, a fresh buffer each time.
    out: Vec<u8>,
    /// The kept buffer a large reply is framed in (header, annotations, payload).
    frame: Vec<u8>,
}

/// Serve one accepted connection to its end. `guard` is None for a connection over the
/// limit: it gets Pyro4's CONNECTFAIL for a full server and is closed.
pub(crate) async fn serve_connection(
    handle: DaemonHandle,
    stream: Stream,
    addr: ClientAddr,
    guard: Option<ActiveGuard>,
) {
    let shared = handle.shared.clone();
    let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let limits = Limits {
        max_message_size: shared.config.max_message_size,
        ..Limits::default()
    };
    let info = Arc::new(ConnInfo {
        id,
        addr,
        daemon: handle.clone(),
        response_annotations: Mutex::new(Annotations::new()),
        spare: Mutex::new(Vec::new()),
    });
    let mut conn = Conn {
        stream,
        buf: BytesMut::with_capacity(INITIAL_BUFFER),
        decoder: MessageDecoder::new(limits, shared.hmac_key.clone()),
        info,
        timeout: shared.config.comm_timeout(),
        deadline: None,
        decode_limits: DecodeLimits::default(),
        consumed: 0,
        payload: None,
        out: Vec::new(),
        frame: Vec::new(),
        handle,
    };
    let deny = if guard.is_none() {
        Some(CONNECTION_LIMIT_REASON)
    } else {
        None
    };
    if conn.handshake(deny).await {
        conn.request_loop().await;
    }
    let _ = conn.stream.shutdown().await;
    // Pyro4's _clientDisconnect: streams linger (orphaned) or go at once.
    shared
        .streams
        .disconnect(id, seconds(shared.config.iter_stream_linger));
    tracing::debug!(addr = %conn.info.addr, "connection closed");
    drop(guard);
}

fn correlation(annotations: &Annotations) -> Uuid {
    // Pyro4: the request's CORR, else a fresh uuid4.
    annotations
        .get(&ANNOTATION_CORR)
        .and_then(|b| Uuid::from_slice(b).ok())
        .unwrap_or_else(Uuid::new_v4)
}

impl Conn {
    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Make sure at least `n` bytes are buffered, before the message deadline.
    ///
    /// COMMTIMEOUT bounds a whole message, not each read: a peer trickling one byte at a
    /// time (slowloris) cannot hold a connection open longer than COMMTIMEOUT per message.
    /// Waiting for the next request counts too, so idle connections close after
    /// COMMTIMEOUT as Pyro4 closes them.
    async fn fill(&mut self, n: usize) -> Result<(), ReadError> {
        while self.buf.len() < n {
            let missing = (n - self.buf.len()).min(MAX_RESERVE_STEP);
            if self.buf.capacity() - self.buf.len() < missing {
                self.buf.reserve(missing.max(INITIAL_BUFFER));
            }
            let read = self.stream.read_buf(&mut self.buf);
            let got = match self.deadline {
                Some(t) => tokio::time::timeout_at(t, read)
                    .await
                    .map_err(|_| ReadError::Closed)?,
                None => read.await,
            };
            match got {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// Read and validate a header (checksum, version, type number, size limit).
    async fn read_header(&mut self) -> Result<Header, ReadError> {
        self.release_body();
        self.deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        self.fill(HEADER_SIZE).await?;
        let mut head = [0u8; HEADER_SIZE];
        head.copy_from_slice(&self.buf[..HEADER_SIZE]);
        let header = self
            .decoder
            .decode_header(&head)
            .map_err(ReadError::Invalid)?;
        self.buf.advance(HEADER_SIZE);
        Ok(header)
    }

    /// Read the annotations and payload of a message (HMAC checked, zlib inflated). A
    /// plain payload is not copied out of the read buffer: [`Conn::payload`] shows it
    /// until the next read.
    async fn read_body(&mut self, header: &Header) -> Result<Message, ReadError> {
        // body_len is at most 65535 + i32::MAX, which fits usize on supported targets.
        let len = usize::try_from(header.body_len()).map_err(|_| ReadError::Closed)?;
        self.fill(len).await?;
        self.consumed = len;
        let (msg, payload) = self
            .decoder
            .decode_body_in_place(header, &self.buf[..len])
            .map_err(ReadError::Invalid)?;
        self.payload = payload;
        Ok(msg)
    }

    /// The payload of the message [`Conn::read_body`] returned last.
    fn payload<'a>(&'a self, msg_data: &'a [u8]) -> &'a [u8] {
        match &self.payload {
            Some(range) => self.buf.get(range.clone()).unwrap_or_default(),
            None => msg_data,
        }
    }

    /// Drop the last message's body from the read buffer.
    fn release_body(&mut self) {
        self.payload = None;
        let used = std::mem::take(&mut self.consumed).min(self.buf.len());
        if used > 0 {
            self.buf.advance(used);
            if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
                self.buf = BytesMut::with_capacity(INITIAL_BUFFER);
            }
        }
    }

    /// Encode and write one message. False when it cannot be sent (too large for
    /// MAX_MESSAGE_SIZE, or the connection is gone): the connection is then closed.
    async fn send(&mut self, msg: &Message, compress: bool) -> bool {
        let shared = &self.handle.shared;
        // A large plain payload is framed in a buffer the connection keeps, not a fresh
        // one: a fresh megabyte per reply is faulted in on every call. One contiguous
        // write, not a vectored one: on loopback the kernel took twice as long for the
        // vectored write (measured, daemon system time per 1 MiB echo 0.9-1.4 -> 0.4-0.5 ms).
        let (head, split) = match msg.encode_split(
            compress,
            shared.hmac_key.as_deref(),
            shared.config.max_message_size,
            SPLIT_WRITE_ABOVE,
        ) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!("cannot send reply: {e}");
                return false;
            }
        };
        let mut frame = head;
        if split {
            let mut whole = std::mem::take(&mut self.frame);
            whole.clear();
            whole.extend_from_slice(&frame);
            whole.extend_from_slice(&msg.data);
            frame = whole;
        }
        let write = self.stream.write_all(&frame);
        let sent = match self.timeout {
            Some(t) => matches!(tokio::time::timeout(t, write).await, Ok(Ok(()))),
            None => write.await.is_ok(),
        };
        if split && frame.capacity() <= SHRINK_ABOVE {
            self.frame = frame;
        }
        sent
    }

    fn accepted(&self, serializer_id: u16) -> Option<SerializerKind> {
        self.shared()
            .accepted
            .iter()
            .copied()
            .find(|k| k.id() == serializer_id)
    }

    /// Take `current_context.response_annotations` (they go with one reply only).
    fn take_response_annotations(&self) -> Annotations {
        match self.info.response_annotations.lock() {
            Ok(mut a) => std::mem::take(&mut *a),
            Err(_) => Annotations::new(),
        }
    }

    // ------------------------------------------------------------------------------
    // Handshake (Pyro4's Daemon._handshake)
    // ------------------------------------------------------------------------------

    /// True when the client was accepted (CONNECTOK sent).
    async fn handshake(&mut self, deny: Option<&str>) -> bool {
        let header = match self.read_header().await {
            Ok(h) => h,
            Err(ReadError::Closed) => return false,
            // Pyro4 closes the socket before it could answer an oversized message.
            Err(ReadError::Invalid(pyro_wire::Error::MessageTooLarge { .. })) => return false,
            // Failures before the serializer is known are answered in marshal, seq 0.
            Err(ReadError::Invalid(e)) => {
                return self
                    .connect_fail(0, SerializerKind::Marshal, &e.to_string(), None)
                    .await
            }
        };
        if header.msg_type != MsgType::Connect {
            let reason = format!("invalid msg type {} received", header.msg_type.as_u16());
            return self
                .connect_fail(0, SerializerKind::Marshal, &reason, None)
                .await;
        }
        let msg = match self.read_body(&header).await {
            Ok(m) => m,
            Err(ReadError::Closed) => return false,
            Err(ReadError::Invalid(e)) => {
                return self
                    .connect_fail(0, SerializerKind::Marshal, &e.to_string(), None)
                    .await
            }
        };
        let seq = msg.seq;
        if let Some(reason) = deny {
            return self
                .connect_fail(seq, SerializerKind::Marshal, reason, None)
                .await;
        }
        let Some(kind) = self.accepted(msg.serializer_id) else {
            let reason = format!(
                "message used serializer that is not accepted: {}",
                msg.serializer_id
            );
            return self
                .connect_fail(seq, SerializerKind::Marshal, &reason, None)
                .await;
        };
        let corr = correlation(&msg.annotations);
        match self.handshake_response(kind, &msg) {
            Ok((payload, flags)) => {
                let mut reply = Message::new(MsgType::ConnectOk, seq, kind.id(), payload);
                reply.flags = flags;
                reply.annotations = self.take_response_annotations();
                reply
                    .annotations
                    .insert(ANNOTATION_CORR, corr.as_bytes().to_vec());
                let compress = self.shared().config.compression;
                self.send(&reply, compress).await
            }
            Err(reason) => self.connect_fail(seq, kind, &reason, Some(corr)).await,
        }
    }

    /// The CONNECTOK payload and flags, or the CONNECTFAIL reason (`str(exception)`).
    fn handshake_response(
        &self,
        kind: SerializerKind,
        msg: &Message,
    ) -> Result<(Vec<u8>, u16), String> {
        let data = kind
            .decode(self.payload(&msg.data), &self.decode_limits)
            .map_err(|e| e.to_string())?;
        let Some(dict) = data.as_dict() else {
            return Err(format!(
                "handshake data is a {}, not a dict",
                data.type_name()
            ));
        };
        // str(KeyError('handshake')) is "'handshake'".
        let hs = dict
            .get_str("handshake")
            .ok_or_else(|| "'handshake'".to_string())?;
        let response = match &self.shared().validator {
            Some(validate) => validate(&self.info.addr, hs).map_err(|f| f.message())?,
            None => Value::str("hello"),
        };
        let (value, flags) = if msg.flags & FLAGS_META_ON_CONNECT != 0 {
            let object = dict
                .get_str("object")
                .ok_or_else(|| "'object'".to_string())?;
            let meta = object::get_metadata(&self.handle, object, true).map_err(|f| f.message())?;
            let d = Dict::from_unique_pairs(vec![
                (Value::str("handshake"), response),
                (Value::str("meta"), meta),
            ]);
            (Value::Dict(d), FLAGS_META_ON_CONNECT)
        } else {
            (response, 0)
        };
        let payload = kind.encode(&value).map_err(|e| e.to_string())?;
        Ok((payload, flags))
    }

    /// Send CONNECTFAIL (never compressed, CORR attached) and report failure.
    async fn connect_fail(
        &mut self,
        seq: u16,
        kind: SerializerKind,
        reason: &str,
        corr: Option<Uuid>,
    ) -> bool {
        tracing::debug!(addr = %self.info.addr, "handshake failed: {reason}");
        // Encoding a str in marshal/serpent/json cannot fail; fall back to marshal anyway.
        let (kind, payload) = match kind.encode(&Value::str(reason)) {
            Ok(p) => (kind, p),
            Err(_) => (
                SerializerKind::Marshal,
                pyro_codec::marshal::to_vec(&Value::str(reason)).unwrap_or_default(),
            ),
        };
        let mut reply = Message::new(MsgType::ConnectFail, seq, kind.id(), payload);
        reply.annotations.insert(
            ANNOTATION_CORR,
            corr.unwrap_or_else(Uuid::new_v4).as_bytes().to_vec(),
        );
        let _ = self.send(&reply, false).await;
        false
    }

    // ------------------------------------------------------------------------------
    // Requests (Pyro4's Daemon.handleRequest)
    // ------------------------------------------------------------------------------

    async fn request_loop(&mut self) {
        let mut shutdown = self.shared().shutdown_tx.subscribe();
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            let header = tokio::select! {
                h = self.read_header() => h,
                _ = shutdown.changed() => break,
            };
            let header = match header {
                Ok(h) => h,
                Err(ReadError::Closed) => break,
                Err(ReadError::Invalid(e)) => {
                    // Pyro4 re-raises receive errors into the server loop, which closes.
                    tracing::debug!(addr = %self.info.addr, "invalid message: {e}");
                    break;
                }
            };
            if !matches!(header.msg_type, MsgType::Invoke | MsgType::Ping) {
                tracing::debug!(addr = %self.info.addr, "invalid msg type {} received", header.msg_type.as_u16());
                break;
            }
            let msg = match self.read_body(&header).await {
                Ok(m) => m,
                Err(ReadError::Closed) => break,
                Err(ReadError::Invalid(e)) => {
                    // HMAC problems after the handshake: SecurityError, connection closed.
                    tracing::debug!(addr = %self.info.addr, "invalid message: {e}");
                    break;
                }
            };
            let keep = if msg.msg_type == MsgType::Ping {
                self.pong(&msg).await
            } else {
                self.invoke(msg).await
            };
            if !keep {
                break;
            }
        }
    }

    /// MSG_PING: same seq and serializer id, payload `pong`, never deserialized.
    async fn pong(&mut self, msg: &Message) -> bool {
        let mut reply = Message::new(MsgType::Ping, msg.seq, msg.serializer_id, b"pong".to_vec());
        reply.annotations = self.take_response_annotations();
        reply.annotations.insert(
            ANNOTATION_CORR,
            correlation(&msg.annotations).as_bytes().to_vec(),
        );
        self.send(&reply, false).await
    }

    /// Handle one INVOKE. False when the connection must be closed afterwards.
    async fn invoke(&mut self, msg: Message) -> bool {
        let Message {
            flags,
            seq,
            serializer_id,
            annotations,
            data,
            ..
        } = msg;
        let oneway = flags & FLAGS_ONEWAY != 0;
        let Some(kind) = self.accepted(serializer_id) else {
            // Pyro4 answers with a SerializeError in the request's serializer (when it
            // has it) and, that being a CommunicationError, closes the connection.
            let fault = Fault::pyro(
                "SerializeError",
                format!("message used serializer that is not accepted: {serializer_id}"),
            );
            if let Some(k) = SerializerKind::from_id(serializer_id).filter(|k| k.is_supported()) {
                if !oneway {
                    let tb = fault.traceback_lines("?", "?");
                    self.send_exception(seq, k, &fault, Some(tb), 0, Annotations::new())
                        .await;
                }
            }
            return false;
        };
        if flags & FLAGS_KEEPSERIALIZED != 0 {
            // SerializedBlob pass-through needs Python objects on this side.
            if !oneway {
                let fault = Fault::pyro(
                    "PyroError",
                    "FLAGS_KEEPSERIALIZED is not supported by this daemon",
                );
                let tb = fault.traceback_lines("?", "?");
                return self
                    .send_exception(seq, kind, &fault, Some(tb), 0, Annotations::new())
                    .await;
            }
            return true;
        }
        let correlation_id = correlation(&annotations);
        let ctx = CallContext {
            conn: self.info.clone(),
            seq,
            msg_flags: flags,
            serializer_id,
            annotations: Arc::new(annotations),
            correlation_id,
        };
        if kind == SerializerKind::Serpent
            && flags & FLAGS_BATCH == 0
            && self.shared().serpent_objects.load(Ordering::Relaxed) > 0
        {
            if let Some((future, object, method)) = self.serpent_call(&ctx, &data) {
                drop(data);
                self.release_body();
                let outcome = future.resolve().await.map(|out| reply_of(out, oneway));
                return self
                    .reply(seq, kind, outcome, oneway, &object, &method, correlation_id)
                    .await;
            }
        }
        let decoded = envelope::decode_call(kind, self.payload(&data), &self.decode_limits);
        drop(data);
        self.release_body();
        let call = match decoded {
            Ok(c) => c,
            Err(e) => {
                // A SerializeError is answered, then the connection closed (Pyro4).
                if !oneway {
                    let fault = Fault::pyro("SerializeError", e.to_string());
                    let tb = fault.traceback_lines("?", "?");
                    self.send_exception(seq, kind, &fault, Some(tb), 0, Annotations::new())
                        .await;
                }
                return false;
            }
        };
        let Call {
            object,
            method,
            args,
            kwargs,
        } = call;
        let outcome = self
            .execute(ctx, &object, &method, args, kwargs, flags)
            .await;
        self.reply(seq, kind, outcome, oneway, &object, &method, correlation_id)
            .await
    }

    /// A plain serpent call the object decodes itself ([`Dispatch::call_serpent`]), when
    /// the payload names its target in serpent's own layout, the object is there, the
    /// method resolves and the call runs on this connection (not a oneway call for
    /// ONEWAY_THREADED, not a property, not the daemon's own object). Returns the started
    /// call with its object id and method name; `None` leaves the call to the value path.
    fn serpent_call(
        &self,
        ctx: &CallContext,
        data: &[u8],
    ) -> Option<(super::dispatch::CallFuture, String, String)> {
        let payload = self.payload(data);
        let (object, method) = pyro_codec::serpent::peek_call_target(payload)?;
        if object == pyro_wire::DAEMON_NAME
            || method == "__getattr__"
            || method == "__setattr__"
            || (ctx.msg_flags & FLAGS_ONEWAY != 0 && self.shared().config.oneway_threaded)
        {
            return None;
        }
        let obj = self.handle.object(object).filter(|o| o.decodes_serpent())?;
        // A method that does not resolve is reported by the value path, after the whole
        // call has been decoded (a broken payload is a SerializeError first, as in Pyro4).
        resolve(obj.as_ref(), method).ok()?;
        let future = obj.call_serpent(ctx, method, payload, &self.decode_limits)?;
        Some((future, object.to_owned(), method.to_owned()))
    }

    /// Answer one call with its outcome. False when the connection must be closed.
    #[allow(clippy::too_many_arguments)]
    async fn reply(
        &mut self,
        seq: u16,
        kind: SerializerKind,
        outcome: Result<Reply, Fault>,
        oneway: bool,
        object: &str,
        method: &str,
        correlation_id: Uuid,
    ) -> bool {
        match outcome {
            Ok(Reply::Nothing) => true,
            Ok(Reply::Value(value, batch)) => {
                self.send_result(seq, kind, &value, batch, correlation_id)
                    .await
            }
            Ok(Reply::Encoded(payload)) => {
                self.send_payload(seq, kind, payload, false, correlation_id, KeepAs::Spare)
                    .await
            }
            Ok(Reply::Stream(iter)) => self.send_stream_start(seq, kind, iter).await,
            Err(fault) => {
                if oneway {
                    tracing::debug!("oneway call {object}.{method} failed: {fault}");
                    return true;
                }
                let tb = fault.traceback_lines(object, method);
                self.send_exception(seq, kind, &fault, Some(tb), 0, Annotations::new())
                    .await
            }
        }
    }

    /// Look up the object and run the call (batch, attribute access or method).
    async fn execute(
        &mut self,
        ctx: CallContext,
        object: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Option<Dict>,
        flags: u16,
    ) -> Result<Reply, Fault> {
        let oneway = flags & FLAGS_ONEWAY != 0;
        let obj = self
            .handle
            .object(object)
            .ok_or_else(|| Fault::pyro("DaemonError", "unknown object"))?;
        if flags & FLAGS_BATCH != 0 {
            let results = run_batch(&obj, &ctx, object, args).await?;
            return Ok(if oneway {
                Reply::Nothing
            } else {
                Reply::Value(Value::List(results), true)
            });
        }
        match method {
            "__getattr__" => {
                let name = attr_name(&args)?;
                let v = obj.get_attr(&ctx, name)?;
                Ok(if oneway {
                    Reply::Nothing
                } else {
                    Reply::Value(v, false)
                })
            }
            "__setattr__" => {
                let name = attr_name(&args)?;
                let value = args
                    .get(1)
                    .cloned()
                    .ok_or_else(|| Fault::new("builtins.IndexError", "tuple index out of range"))?;
                let v = obj.set_attr(&ctx, name, value)?;
                Ok(if oneway {
                    Reply::Nothing
                } else {
                    Reply::Value(v, false)
                })
            }
            _ => {
                resolve(obj.as_ref(), method)?;
                let kwargs = kwargs.unwrap_or_default();
                // The daemon's own methods never block, so they run in order even when
                // oneway: a close_stream sent ahead of the next request takes effect first.
                if oneway
                    && self.shared().config.oneway_threaded
                    && object != pyro_wire::DAEMON_NAME
                {
                    // ONEWAY_THREADED: the call runs on its own task so this connection can
                    // take the next request at once.
                    let method = method.to_string();
                    let object = object.to_string();
                    tokio::spawn(async move {
                        if let Err(f) = obj.call(ctx, &method, args, kwargs).resolve().await {
                            tracing::debug!("oneway call {object}.{method} failed: {f}");
                        }
                    });
                    return Ok(Reply::Nothing);
                }
                let out = obj.call(ctx, method, args, kwargs).resolve().await?;
                Ok(reply_of(out, oneway))
            }
        }
    }

    /// A normal MSG_RESULT: response annotations + CORR, compressed per COMPRESSION.
    async fn send_result(
        &mut self,
        seq: u16,
        kind: SerializerKind,
        value: &Value,
        batch: bool,
        corr: Uuid,
    ) -> bool {
        let mut payload = std::mem::take(&mut self.out);
        payload.clear();
        let payload = match kind.encode_into(value, &mut payload) {
            Ok(()) => payload,
            Err(e) => {
                let fault = Fault::pyro("SerializeError", e.to_string());
                let tb = fault.traceback_lines("?", "?");
                self.send_exception(seq, kind, &fault, Some(tb), 0, Annotations::new())
                    .await;
                // SerializeError is a CommunicationError: Pyro4 closes after replying.
                return false;
            }
        };
        self.send_payload(seq, kind, payload, batch, corr, KeepAs::Out)
            .await
    }

    /// Send a MSG_RESULT with this payload (in `kind`), then keep its buffer (if not too
    /// large) where `keep` says, for the next result.
    async fn send_payload(
        &mut self,
        seq: u16,
        kind: SerializerKind,
        payload: Vec<u8>,
        batch: bool,
        corr: Uuid,
        keep: KeepAs,
    ) -> bool {
        let mut reply = Message::new(MsgType::Result, seq, kind.id(), payload);
        if batch {
            reply.flags |= FLAGS_BATCH;
        }
        reply.annotations = self.take_response_annotations();
        reply
            .annotations
            .insert(ANNOTATION_CORR, corr.as_bytes().to_vec());
        let compress = self.shared().config.compression;
        let sent = self.send(&reply, compress).await;
        let mut data = reply.data;
        match keep {
            KeepAs::Out if data.capacity() <= SHRINK_ABOVE => self.out = data,
            KeepAs::Spare if (KEEP_SPARE_FROM..=SHRINK_ABOVE).contains(&data.capacity()) => {
                data.clear();
                if let Ok(mut spare) = self.info.spare.lock() {
                    *spare = data;
                }
            }
            _ => {}
        }
        sent
    }

    /// The stream-start reply: an exception-style result (0x21) carrying
    /// `ProtocolError("result of call is an iterator")` with a None traceback and the
    /// stream id in STRM (absent when ITER_STREAMING is off).
    async fn send_stream_start(&mut self, seq: u16, kind: SerializerKind, iter: ItemIter) -> bool {
        let mut ann = Annotations::new();
        if self.shared().config.iter_streaming {
            let id = self.shared().streams.open(self.info.id, iter);
            ann.insert(ANNOTATION_STRM, id.into_bytes());
        } else {
            drop(iter);
        }
        let fault = Fault::pyro("ProtocolError", "result of call is an iterator");
        self.send_exception(seq, kind, &fault, None, FLAGS_ITEMSTREAMRESULT, ann)
            .await
    }

    /// An exception MSG_RESULT (Pyro4's `_sendExceptionResponse`): no CORR, never
    /// compressed; an exception that cannot be serialized becomes a PyroError.
    async fn send_exception(
        &mut self,
        seq: u16,
        kind: SerializerKind,
        fault: &Fault,
        traceback: Option<Vec<String>>,
        flags: u16,
        annotations: Annotations,
    ) -> bool {
        let payload = match kind.encode(&fault.to_remote(traceback.clone()).to_value()) {
            Ok(p) => p,
            Err(e) => {
                let text = format!(
                    "Error serializing exception: {e}. Original exception: {}: {}",
                    fault.class_name,
                    fault.message()
                );
                let fallback = Fault::pyro("PyroError", text);
                match kind.encode(&fallback.to_remote(traceback).to_value()) {
                    Ok(p) => p,
                    Err(_) => return false,
                }
            }
        };
        // response_annotations are not part of an exception reply, but they are spent.
        let _ = self.take_response_annotations();
        let mut reply = Message::new(MsgType::Result, seq, kind.id(), payload);
        reply.flags = FLAGS_EXCEPTION | flags;
        reply.annotations = annotations;
        self.send(&reply, false).await
    }
}

/// Pyro4's `getAttribute`: private names are refused before the object is asked.
/// What a method call's outcome sends back (nothing for a oneway call).
fn reply_of(out: Outcome, oneway: bool) -> Reply {
    match out {
        _ if oneway => Reply::Nothing,
        Outcome::Value(v) => Reply::Value(v, false),
        Outcome::Stream(it) => Reply::Stream(it),
        Outcome::Encoded(p) => Reply::Encoded(p),
    }
}

fn resolve(obj: &dyn Dispatch, method: &str) -> Result<(), Fault> {
    if is_private_attribute(method) {
        return Err(Fault::attribute_error(format!(
            "attempt to access private attribute '{method}'"
        )));
    }
    obj.check_method(method)
}

fn attr_name(args: &[Value]) -> Result<&str, Fault> {
    match args.first() {
        Some(Value::Str(s)) => Ok(s),
        Some(other) => Err(Fault::type_error(format!(
            "attribute name must be string, not '{}'",
            other.type_name()
        ))),
        None => Err(Fault::new(
            "builtins.IndexError",
            "tuple index out of range",
        )),
    }
}

/// A batch (`<batch>`): each `(method, vargs, kwargs)` in order on the same object;
/// the first failing call is wrapped in `_ExceptionWrapper` and ends the batch.
/// Resolution errors fail the whole request, unwrapped (as Pyro4).
async fn run_batch(
    obj: &Arc<dyn Dispatch>,
    ctx: &CallContext,
    object: &str,
    calls: Vec<Value>,
) -> Result<Vec<Value>, Fault> {
    let mut results = Vec::with_capacity(calls.len().min(1024));
    for item in calls {
        let (method, args, kwargs) = batch_item(item)?;
        resolve(obj.as_ref(), &method)?;
        let failed = match obj.call(ctx.clone(), &method, args, kwargs).resolve().await {
            Ok(Outcome::Value(v)) => {
                results.push(v);
                None
            }
            Ok(Outcome::Encoded(p)) => match decode_result(ctx, &p) {
                Ok(v) => {
                    results.push(v);
                    None
                }
                Err(f) => Some(f),
            },
            // Pyro4 does not stream in batches; an iterator cannot be returned here.
            Ok(Outcome::Stream(_)) => Some(Fault::pyro(
                "PyroError",
                "iterator results are not supported in a batch",
            )),
            Err(f) => Some(f),
        };
        if let Some(f) = failed {
            let tb = f.traceback_lines(object, &method);
            results.push(envelope::exception_wrapper_to_value(&f.to_remote(Some(tb))));
            break;
        }
    }
    Ok(results)
}

/// A result a dispatcher serialized itself, as a value again (for a batch's result list).
fn decode_result(ctx: &CallContext, payload: &[u8]) -> Result<Value, Fault> {
    let kind = SerializerKind::from_id(ctx.serializer_id())
        .ok_or_else(|| Fault::pyro("SerializeError", "unknown serializer"))?;
    kind.decode(payload, &DecodeLimits::default())
        .map_err(|e| Fault::pyro("SerializeError", e.to_string()))
}

fn batch_item(item: Value) -> Result<(String, Vec<Value>, Dict), Fault> {
    let parts = match item {
        Value::Tuple(p) | Value::List(p) => p,
        other => {
            return Err(Fault::type_error(format!(
                "cannot unpack non-iterable {} object",
                other.type_name()
            )))
        }
    };
    let n = parts.len();
    let Ok::<[Value; 3], _>([m, a, k]) = parts.try_into() else {
        return Err(Fault::value_error(format!(
            "expected 3 values to unpack in a batch call, got {n}"
        )));
    };
    let method = match m {
        Value::Str(s) => s,
        other => {
            return Err(Fault::type_error(format!(
                "method name must be a str, not {}",
                other.type_name()
            )))
        }
    };
    let args = match a {
        Value::Tuple(a) | Value::List(a) => a,
        other => {
            return Err(Fault::type_error(format!(
                "argument list must be a sequence, not {}",
                other.type_name()
            )))
        }
    };
    let kwargs = match k {
        Value::Dict(d) => d,
        Value::None => Dict::new(),
        other => {
            return Err(Fault::type_error(format!(
                "keyword arguments must be a mapping, not {}",
                other.type_name()
            )))
        }
    };
    Ok((method, args, kwargs))
}
