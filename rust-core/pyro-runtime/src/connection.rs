//! A framed Pyro4 connection: whole messages over a byte stream (TCP, TLS over TCP or a
//! Unix socket), with one reusable read buffer and [`pyro_wire::MessageDecoder`] doing
//! the parsing.

use crate::config::Config;
use crate::error::from_io;
use crate::{Error, Result};
use bytes::{Buf, Bytes, BytesMut};
use pyro_wire::{DecodedInPlace, Limits, Location, Message, MessageDecoder};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

// Buffer sizes shared by both ends (this client connection and the daemon's).

/// Initial capacity of a read buffer: enough for most messages in one read.
pub(crate) const INITIAL_BUFFER: usize = 8 * 1024;
/// Largest single growth step of a read buffer. A peer announcing a huge message only
/// makes the buffer grow as bytes actually arrive, never by the announced length at once.
pub(crate) const MAX_RESERVE_STEP: usize = 256 * 1024;
/// Above this capacity an idle buffer is shrunk back (or not kept), so one large message
/// does not pin memory for the rest of the connection's life.
pub(crate) const SHRINK_ABOVE: usize = 4 * 1024 * 1024;
/// A plain payload longer than this is framed without a fresh buffer for the whole
/// message (written behind its header from a kept buffer) and, when received, used where
/// it lies in the read buffer.
pub(crate) const SPLIT_WRITE_ABOVE: usize = 16 * 1024;
/// From this payload size on, [`Connection::send_parts`] copies into its kept buffer
/// rather than writing vectored.
const COPY_WRITE_FROM: usize = 128 * 1024;

/// A client or server socket: TCP, TLS over TCP (Pyro4's SSL mode) or a Unix domain
/// socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP (IPv4 or IPv6).
    Tcp(TcpStream),
    /// Unix domain socket (`./u:path` locations).
    #[cfg(unix)]
    Unix(UnixStream),
    /// TLS over TCP, client side (a proxy with SSL on).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS over TCP, server side (a daemon with SSL on).
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// Connect to a location, with TLS when the process-wide client setting asks for it
    /// ([`crate::tls::process_client_config`]: PYRO_SSL and friends, as Pyro4's
    /// process-wide `config.SSL`). TCP connections get TCP_NODELAY: every message is
    /// written in one piece, so Nagle's algorithm can only add latency.
    pub async fn connect(location: &Location) -> Result<Stream> {
        let tls = crate::tls::process_client_config()
            .map_err(|e| connect_error(location, io::Error::other(e)))?;
        Stream::connect_tls(location, tls.as_ref()).await
    }

    /// Connect with the TLS setting of `config` (its SSL items when SSL is on there,
    /// else the process-wide setting).
    pub async fn connect_with_config(location: &Location, config: &Config) -> Result<Stream> {
        let tls = crate::tls::client_config_for(config)
            .map_err(|e| connect_error(location, io::Error::other(e)))?;
        Stream::connect_tls(location, tls.as_ref()).await
    }

    /// Connect, with TLS when `tls` is given (TCP locations only; the server name checked
    /// against the certificate is the URI's host, as Pyro4's `server_hostname`).
    pub async fn connect_tls(
        location: &Location,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Stream> {
        match location {
            Location::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| connect_error(location, e))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| connect_error(location, e))?;
                let Some(tls) = tls else {
                    return Ok(Stream::Tcp(stream));
                };
                let name = ServerName::try_from(host.clone()).map_err(|e| {
                    connect_error(
                        location,
                        io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
                    )
                })?;
                let connector = tokio_rustls::TlsConnector::from(tls.clone());
                let tls_stream = connector.connect(name, stream).await.map_err(|e| {
                    // A plain Pyro4 daemon answers a ClientHello with a CONNECTFAIL,
                    // which rustls reports as a corrupt record: say what it means.
                    Error::Communication(format!(
                        "cannot connect to {}: TLS handshake failed: {e} (is SSL enabled on the server?)",
                        location_text(location)
                    ))
                })?;
                Ok(Stream::TlsClient(Box::new(tls_stream)))
            }
            #[cfg(unix)]
            Location::Unix(path) => {
                let stream = UnixStream::connect(unix_path(path))
                    .await
                    .map_err(|e| connect_error(location, e))?;
                Ok(Stream::Unix(stream))
            }
            #[cfg(not(unix))]
            Location::Unix(_) => Err(Error::Communication(
                "unix domain sockets are not supported on this platform".into(),
            )),
        }
    }

    /// True for a TLS stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::TlsClient(_) | Stream::TlsServer(_))
    }

    /// The certificates the peer presented over TLS (Python's `getpeercert()`), end
    /// entity first. None on plain streams or when the peer sent none.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        let certs = match self {
            Stream::TlsClient(s) => s.get_ref().1.peer_certificates(),
            Stream::TlsServer(s) => s.get_ref().1.peer_certificates(),
            _ => None,
        }?;
        Some(certs.iter().map(|c| c.clone().into_owned()).collect())
    }
}

/// Linux abstract socket names start with a NUL byte in Pyro URIs; tokio takes the path
/// as is, which is what Linux needs for abstract names as well.
#[cfg(unix)]
fn unix_path(path: &str) -> &str {
    path
}

fn connect_error(location: &Location, e: io::Error) -> Error {
    // Pyro4: CommunicationError("cannot connect to <location>: <os error>").
    Error::Communication(format!(
        "cannot connect to {}: {e}",
        location_text(location)
    ))
}

/// `host:port`, `[ipv6]:port` or `./u:path`, as Pyro4 renders locations.
pub fn location_text(location: &Location) -> String {
    match location {
        Location::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        Location::Tcp { host, port } => format!("{host}:{port}"),
        Location::Unix(path) => format!("./u:{path}"),
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::TlsClient(s) => s.is_write_vectored(),
            Stream::TlsServer(s) => s.is_write_vectored(),
        }
    }
}

/// A plain connection got TLS records back (typically the alert a TLS server sends
/// when a plain client talks to it).
fn tls_peer_error() -> Error {
    Error::Communication(
        "the peer speaks TLS: enable SSL (Pyro4 config SSL, PYRO_SSL) on this side too".into(),
    )
}

/// Whole Pyro4 messages over a byte stream.
///
/// Reading: bytes accumulate in one buffer that is reused for the life of the
/// connection; the decoder is only consulted again once at least the number of bytes it
/// asked for has arrived. End of stream exactly between two messages is a clean close
/// (`Ok(None)`); in the middle of a message it is a `ConnectionClosedError`.
#[derive(Debug)]
pub struct Connection<S = Stream> {
    stream: S,
    buf: BytesMut,
    decoder: MessageDecoder,
    /// The buffer of [`Connection::send_parts`].
    wbuf: Vec<u8>,
}

/// One message from [`Connection::recv_shared`]: its payload is either in `msg.data` or,
/// when large, still in the connection's read buffer.
#[derive(Debug)]
pub struct Received {
    /// The message; `data` is empty when the payload is shared.
    pub msg: Message,
    payload: Option<Bytes>,
}

impl Received {
    /// The payload (decompressed, HMAC checked), wherever it is.
    pub fn payload(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or(&self.msg.data)
    }

    /// The message with its payload in `data` (copied if it was shared).
    pub fn into_message(self) -> Message {
        let Received { mut msg, payload } = self;
        if let Some(p) = payload {
            msg.data = p.to_vec();
        }
        msg
    }

    /// The message and its payload as one [`Bytes`] (no copy).
    pub fn into_parts(self) -> (Message, Bytes) {
        let Received { mut msg, payload } = self;
        let payload = payload.unwrap_or_else(|| Bytes::from(std::mem::take(&mut msg.data)));
        (msg, payload)
    }
}

impl Connection<Stream> {
    /// Connect to a location (no handshake; see [`crate::Proxy`] for that).
    pub async fn connect(
        location: &Location,
        limits: Limits,
        hmac_key: Option<Vec<u8>>,
    ) -> Result<Self> {
        Ok(Connection::new(
            Stream::connect(location).await?,
            limits,
            hmac_key,
        ))
    }

    /// Connect with the TLS setting of `config` (see [`Stream::connect_with_config`]).
    pub async fn connect_with_config(
        location: &Location,
        limits: Limits,
        hmac_key: Option<Vec<u8>>,
        config: &Config,
    ) -> Result<Self> {
        Ok(Connection::new(
            Stream::connect_with_config(location, config).await?,
            limits,
            hmac_key,
        ))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Frame an existing stream. `hmac_key` None or empty: no HMAC.
    pub fn new(stream: S, limits: Limits, hmac_key: Option<Vec<u8>>) -> Self {
        let hmac_key = hmac_key.filter(|k| !k.is_empty());
        Connection {
            stream,
            buf: BytesMut::with_capacity(INITIAL_BUFFER),
            decoder: MessageDecoder::new(limits, hmac_key),
            wbuf: Vec::new(),
        }
    }

    /// Write bytes already encoded by [`Message::encode`] (one message or several) and
    /// flush.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| from_io("sending", e))?;
        self.stream.flush().await.map_err(|e| from_io("sending", e))
    }

    /// Write `head` and then `tail` (a message whose large payload was kept apart from
    /// its header) and flush, without a fresh buffer for the whole message. Up to
    /// [`COPY_WRITE_FROM`] they go out in one vectored write; above, both are copied into
    /// a write buffer the connection keeps (up to [`SHRINK_ABOVE`]) and sent in one
    /// piece, since on loopback the kernel took about three times as long for a
    /// vectored write of a megabyte as for a contiguous one (measured with strace -c).
    pub async fn send_parts(&mut self, head: &[u8], tail: &[u8]) -> Result<()> {
        if tail.is_empty() {
            return self.send(head).await;
        }
        if tail.len() < COPY_WRITE_FROM {
            let mut frame = Buf::chain(head, tail);
            self.stream
                .write_all_buf(&mut frame)
                .await
                .map_err(|e| from_io("sending", e))?;
            return self.stream.flush().await.map_err(|e| from_io("sending", e));
        }
        let mut out = std::mem::take(&mut self.wbuf);
        out.clear();
        out.extend_from_slice(head);
        out.extend_from_slice(tail);
        let sent = self.send(&out).await;
        if out.capacity() <= SHRINK_ABOVE {
            self.wbuf = out;
        }
        sent
    }

    /// Read one message. `Ok(None)`: the peer closed the connection cleanly between
    /// messages. Decoder errors (bad header, checksum, HMAC, size limit) are final for
    /// the connection, as in Pyro4, which closes it.
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        Ok(self
            .recv_shared(usize::MAX)
            .await?
            .map(Received::into_message))
    }

    /// [`Connection::recv`], except that a plain payload longer than `share_above` is not
    /// copied out of the read buffer: it comes as a [`Bytes`] view of it
    /// ([`Received::payload`]). Once that view is dropped, the next read reuses the
    /// buffer's memory; a large reply then costs no fresh allocation (nor the page faults
    /// of one).
    pub async fn recv_shared(&mut self, share_above: usize) -> Result<Option<Received>> {
        // Bytes needed before the decoder is worth asking again.
        let mut wanted = 0usize;
        loop {
            if !self.buf.is_empty() && self.buf.len() >= wanted {
                let decoded = self.decode_next(share_above).map_err(|e| {
                    if crate::tls::looks_like_tls(&self.buf) {
                        tls_peer_error()
                    } else {
                        Error::from(e)
                    }
                })?;
                match decoded {
                    Ok(received) => {
                        if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
                            self.buf = BytesMut::with_capacity(INITIAL_BUFFER);
                        }
                        return Ok(Some(received));
                    }
                    Err(more) => {
                        wanted = self.buf.len().saturating_add(more.max(1));
                    }
                }
            }
            let missing = wanted
                .saturating_sub(self.buf.len())
                .clamp(1, MAX_RESERVE_STEP);
            if self.buf.capacity() - self.buf.len() < missing {
                self.buf.reserve(missing.max(INITIAL_BUFFER));
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| from_io("receiving", e))?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                if crate::tls::looks_like_tls(&self.buf) {
                    return Err(tls_peer_error());
                }
                return Err(Error::ConnectionClosed(
                    "receiving: connection closed in the middle of a message".into(),
                ));
            }
        }
    }

    /// Take one message off the front of the read buffer: `Ok(Err(n))` when at least
    /// `n` more bytes are needed first.
    fn decode_next(
        &mut self,
        share_above: usize,
    ) -> pyro_wire::Result<std::result::Result<Received, usize>> {
        let (mut msg, range, used) = match self.decoder.decode_in_place(&self.buf)? {
            DecodedInPlace::Message { msg, payload, used } => (msg, payload, used),
            DecodedInPlace::Incomplete(more) => return Ok(Err(more)),
        };
        let payload = match range {
            Some(r) if r.len() > share_above => {
                let mut frame = self.buf.split_to(used);
                frame.advance(r.start);
                Some(frame.freeze())
            }
            Some(r) => {
                msg.data = self.buf[r].to_vec();
                self.buf.advance(used);
                None
            }
            None => {
                self.buf.advance(used);
                None
            }
        };
        Ok(Ok(Received { msg, payload }))
    }

    /// Read one message; a clean close is an error here (a reply was expected).
    /// Pyro4's text: "receiving: not enough data".
    pub async fn recv_expected(&mut self) -> Result<Message> {
        match self.recv().await? {
            Some(m) => Ok(m),
            None => Err(Error::ConnectionClosed("receiving: not enough data".into())),
        }
    }

    /// Replace the HMAC key used to verify incoming messages.
    pub fn set_hmac_key(&mut self, limits: Limits, hmac_key: Option<Vec<u8>>) {
        self.decoder = MessageDecoder::new(limits, hmac_key.filter(|k| !k.is_empty()));
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Shut down the writing side (the peer sees end of stream).
    pub async fn shutdown(&mut self) -> Result<()> {
        self.stream
            .shutdown()
            .await
            .map_err(|e| from_io("closing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_render_like_pyro4() {
        assert_eq!(
            location_text(&Location::Tcp {
                host: "::1".into(),
                port: 5
            }),
            "[::1]:5"
        );
        assert_eq!(
            location_text(&Location::Tcp {
                host: "h".into(),
                port: 5
            }),
            "h:5"
        );
        assert_eq!(
            location_text(&Location::Unix("/tmp/s".into())),
            "./u:/tmp/s"
        );
    }

    #[tokio::test]
    async fn clean_close_between_messages_is_none() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let mut conn = Connection::new(a, Limits::default(), None);
        assert!(conn.recv().await.unwrap().is_none());
        assert!(matches!(
            conn.recv_expected().await,
            Err(Error::ConnectionClosed(_))
        ));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b"!!!!!!!!!!!!!!!!!!!!!!!!").await.unwrap();
        let mut conn = Connection::new(a, Limits::default(), None);
        let err = conn.recv().await.unwrap_err();
        assert_eq!(err.class_name(), "ProtocolError", "{err}");
    }

    #[tokio::test]
    async fn message_round_trip_in_small_pieces() {
        let mut msg = Message::new(pyro_wire::MsgType::Result, 7, 1, b"payload".to_vec());
        msg.annotations.insert(*b"CORR", vec![9; 16]);
        let bytes = msg.encode(false, None, 0).unwrap();
        let (a, mut b) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            // two messages back to back, then a partial third one
            for chunk in bytes
                .chunks(3)
                .chain(bytes.chunks(5))
                .chain(bytes[..10].chunks(10))
            {
                b.write_all(chunk).await.unwrap();
            }
        });
        let mut conn = Connection::new(a, Limits::default(), None);
        assert_eq!(conn.recv().await.unwrap().unwrap(), msg);
        assert_eq!(conn.recv().await.unwrap().unwrap(), msg);
        let err = conn.recv().await.unwrap_err();
        assert!(matches!(err, Error::ConnectionClosed(_)), "{err}");
        writer.await.unwrap();
    }
}
