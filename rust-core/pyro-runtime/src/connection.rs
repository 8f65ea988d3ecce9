//! A framed Pyro4 connection: whole messages over a byte stream (TCP or a Unix socket),
//! with one reusable read buffer and [`pyro_wire::MessageDecoder`] doing the parsing.

use crate::error::from_io;
use crate::{Error, Result};
use bytes::{Buf, BytesMut};
use pyro_wire::{Decoded, Limits, Location, Message, MessageDecoder};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

/// Initial capacity of the read buffer: enough for most replies in one read.
const INITIAL_BUFFER: usize = 8 * 1024;
/// Largest single growth step of the read buffer. A peer announcing a huge message only
/// makes the buffer grow as bytes actually arrive, never by the announced length at once.
const MAX_RESERVE_STEP: usize = 256 * 1024;
/// Above this capacity an idle buffer is shrunk back, so one large reply does not pin
/// memory for the rest of the connection's life.
const SHRINK_ABOVE: usize = 4 * 1024 * 1024;

/// A client or server socket: TCP or a Unix domain socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP (IPv4 or IPv6).
    Tcp(TcpStream),
    /// Unix domain socket (`./u:path` locations).
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connect to a location. TCP connections get TCP_NODELAY: every message is written
    /// in one piece, so Nagle's algorithm can only add latency.
    pub async fn connect(location: &Location) -> Result<Stream> {
        match location {
            Location::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| connect_error(location, e))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| connect_error(location, e))?;
                Ok(Stream::Tcp(stream))
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
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
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
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }
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
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Frame an existing stream. `hmac_key` None or empty: no HMAC.
    pub fn new(stream: S, limits: Limits, hmac_key: Option<Vec<u8>>) -> Self {
        let hmac_key = hmac_key.filter(|k| !k.is_empty());
        Connection {
            stream,
            buf: BytesMut::with_capacity(INITIAL_BUFFER),
            decoder: MessageDecoder::new(limits, hmac_key),
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

    /// Read one message. `Ok(None)`: the peer closed the connection cleanly between
    /// messages. Decoder errors (bad header, checksum, HMAC, size limit) are final for
    /// the connection, as in Pyro4, which closes it.
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        // Bytes needed before the decoder is worth asking again.
        let mut wanted = 0usize;
        loop {
            if !self.buf.is_empty() && self.buf.len() >= wanted {
                match self.decoder.decode(&self.buf)? {
                    Decoded::Message(msg, used) => {
                        self.buf.advance(used.min(self.buf.len()));
                        if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
                            self.buf = BytesMut::with_capacity(INITIAL_BUFFER);
                        }
                        return Ok(Some(msg));
                    }
                    Decoded::Incomplete(more) => {
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
                return Err(Error::ConnectionClosed(
                    "receiving: connection closed in the middle of a message".into(),
                ));
            }
        }
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
