"""Real Pyro4 4.82 peers in SSL mode for interop-tests/tests/tls_interop.rs.

Pyro4 reads its SSL settings from the environment (PYRO_SSL, PYRO_SSL_SERVERCERT,
PYRO_SSL_SERVERKEY, PYRO_SSL_CACERTS, PYRO_SSL_REQUIRECLIENTCERT, PYRO_SSL_CLIENTCERT,
PYRO_SSL_CLIENTKEY); the Rust test sets them per process.

Usage:
  python tls_peer.py server [client-cn]
      A Pyro4 daemon on 127.0.0.1 serving object "tls.echo" (method echo). With
      client-cn, validateHandshake (as in Pyro4's examples/ssl) requires a client
      certificate whose commonName is client-cn. Prints "uri: <uri>".
  python tls_peer.py call <uri>
      Calls echo("over tls") and prints "echo<TAB>ok <repr>" or
      "echo<TAB>err <Class>: <message>", then the server certificate's commonName.
  python tls_peer.py ns <host> <port>
      locateNS(host, port) over SSL, registers "tls.python" and prints the sorted list.
"""

import sys

import Pyro4
import Pyro4.errors

# Bounded waits: a hanging peer makes this script fail instead of blocking the test.
Pyro4.config.COMMTIMEOUT = 10.0


def out(name, text):
    print(f"{name}\t{text}")
    sys.stdout.flush()


def subject_cn(cert):
    if not cert:
        return None
    subject = dict(p[0] for p in cert.get("subject", ()))
    return subject.get("commonName")


@Pyro4.expose
class Echo:
    def echo(self, message):
        return message


def server(client_cn=None):
    class CertValidatingDaemon(Pyro4.Daemon):
        def validateHandshake(self, conn, data):
            if client_cn:
                cn = subject_cn(conn.getpeercert())
                if cn != client_cn:
                    raise Pyro4.errors.CommunicationError(f"client cert missing or wrong: {cn!r}")
            return super().validateHandshake(conn, data)

    daemon = CertValidatingDaemon(host="127.0.0.1", port=0)
    uri = daemon.register(Echo(), "tls.echo")
    out("ssl", Pyro4.config.SSL)
    print("uri:", uri)
    sys.stdout.flush()
    daemon.requestLoop()


def call(uri):
    p = Pyro4.Proxy(uri)
    try:
        out("echo", "ok " + repr(p.echo("over tls")))
        out("server_cn", subject_cn(p._pyroConnection.getpeercert()))
    except Exception as e:  # noqa: BLE001 - the error is the observation
        out("echo", f"err {type(e).__name__}: {e}")
    finally:
        p._pyroRelease()


def ns(host, port):
    n = Pyro4.locateNS(host, int(port))
    n.register("tls.python", "PYRO:obj@127.0.0.1:1")
    out("list", sorted(n.list().keys()))


def main():
    mode = sys.argv[1]
    if mode == "server":
        server(*sys.argv[2:3])
    elif mode == "call":
        call(sys.argv[2])
    elif mode == "ns":
        ns(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
