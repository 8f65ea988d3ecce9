//! The UDP responder that lets clients find the name server by broadcast (Pyro4's
//! `naming.BroadcastServer`).

use pyro_wire::{Location, Uri};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The only request the responder answers (exactly these 9 bytes).
pub const BROADCAST_REQUEST: &[u8] = b"GET_NSURI";

/// Pyro4 reads at most 100 bytes per datagram; a longer one is truncated and then does
/// not equal the request.
const MAX_DATAGRAM: usize = 100;

/// A running broadcast responder; stops when [`BroadcastServer::close`] is called or the
/// value is dropped.
#[derive(Debug)]
pub struct BroadcastServer {
    local: SocketAddr,
    location_str: String,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// The local address the OS would use to reach `peer` (Pyro4's
/// `socketutil.getInterfaceAddress`: connect a UDP socket, read its name; nothing is
/// sent).
pub fn interface_address_for(peer: IpAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = std::net::UdpSocket::bind(any)?;
    sock.connect((peer, 53))?;
    Ok(sock.local_addr()?.ip())
}

/// The reply for a requester: the URI text, with a `0.0.0.0` host replaced by the
/// interface address that routes to the requester (kept as is when that fails).
pub fn reply_for(ns_uri: &Uri, requester: IpAddr) -> String {
    match &ns_uri.location {
        Some(Location::Tcp { host, port }) if host == "0.0.0.0" => {
            match interface_address_for(requester) {
                Ok(ip) => {
                    let mut uri = ns_uri.clone();
                    uri.location = Some(Location::Tcp {
                        host: ip.to_string(),
                        port: *port,
                    });
                    uri.to_string()
                }
                Err(_) => ns_uri.to_string(),
            }
        }
        _ => ns_uri.to_string(),
    }
}

/// ISO-8859-1 encoding of the reply as Pyro4 sends it; characters beyond U+00FF (which
/// Pyro4 could not encode either) become `?`.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

impl BroadcastServer {
    /// Bind `bchost:bcport` (empty host: all IPv4 interfaces, or `::` when `ipv6`; port
    /// 0: any) and answer `GET_NSURI` with `ns_uri` until closed. Must be called inside
    /// a tokio runtime.
    pub async fn start(
        ns_uri: Uri,
        bchost: Option<&str>,
        bcport: u16,
        ipv6: bool,
    ) -> io::Result<BroadcastServer> {
        let host = match bchost {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ if ipv6 => "::",
            _ => "0.0.0.0",
        };
        let sock = UdpSocket::bind((host, bcport)).await?;
        sock.set_broadcast(true)?;
        let local = sock.local_addr()?;
        // Pyro4: `bchost or sockname[0]`, `bcport or sockname[1]`.
        let shown_host = match bchost {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => local.ip().to_string(),
        };
        let shown_port = if bcport == 0 { local.port() } else { bcport };
        let location_str = if shown_host.contains(':') {
            format!("[{shown_host}]:{shown_port}")
        } else {
            format!("{shown_host}:{shown_port}")
        };
        tracing::info!("ns broadcast server created on {location_str}");
        let (stop, mut stopped) = watch::channel(false);
        let sock = Arc::new(sock);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; MAX_DATAGRAM];
            loop {
                tokio::select! {
                    r = sock.recv_from(&mut buf) => match r {
                        Ok((n, from)) => {
                            if &buf[..n] != BROADCAST_REQUEST {
                                continue;
                            }
                            let reply = reply_for(&ns_uri, from.ip());
                            tracing::debug!("responding to broadcast request from {from}: {reply}");
                            if let Err(e) = sock.send_to(&latin1(&reply), from).await {
                                tracing::debug!("broadcast reply to {from} failed: {e}");
                            }
                        }
                        // e.g. ICMP errors reported on the socket: Pyro4 ignores
                        // socket errors and keeps serving.
                        Err(e) => tracing::debug!("broadcast receive: {e}"),
                    },
                    _ = stopped.changed() => break,
                }
            }
            tracing::debug!("broadcast server loop terminating");
        });
        Ok(BroadcastServer {
            local,
            location_str,
            stop,
            task: Some(task),
        })
    }

    /// The bound socket address (the actual port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The port the responder listens on.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// `host:port` as Pyro4 prints it ("Broadcast server running on ...").
    pub fn location_str(&self) -> &str {
        &self.location_str
    }

    /// Stop answering and wait for the responder task to end.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BroadcastServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn answers_exactly_get_nsuri() {
        let uri = Uri::parse("PYRO:Pyro.NameServer@127.0.0.1:9999").unwrap();
        let bc = BroadcastServer::start(uri, Some("127.0.0.1"), 0, false)
            .await
            .unwrap();
        assert!(bc.location_str().starts_with("127.0.0.1:"));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 200];
        for junk in [&b"GET_NSURI\n"[..], b"GET_NSUR", b"", b"get_nsuri"] {
            client.send_to(junk, bc.local_addr()).await.unwrap();
        }
        let quiet =
            tokio::time::timeout(Duration::from_millis(300), client.recv_from(&mut buf)).await;
        assert!(quiet.is_err(), "no answer to anything but GET_NSURI");
        client
            .send_to(BROADCAST_REQUEST, bc.local_addr())
            .await
            .unwrap();
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"PYRO:Pyro.NameServer@127.0.0.1:9999");
        bc.close().await;
    }

    #[test]
    fn any_address_is_replaced_by_the_routing_interface() {
        let uri = Uri::parse("PYRO:Pyro.NameServer@0.0.0.0:9090").unwrap();
        let text = reply_for(&uri, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(text, "PYRO:Pyro.NameServer@127.0.0.1:9090");
        let other = Uri::parse("PYRO:Pyro.NameServer@myhost:9090").unwrap();
        assert_eq!(
            reply_for(&other, IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "PYRO:Pyro.NameServer@myhost:9090"
        );
    }
}
