"""The name server (``Pyro4.naming``): ``startNS``, ``startNSloop``, the client functions,
and ``python -m pyro_rs.naming`` with Pyro4's options and output.

The name server itself is the Rust ``NameServerDaemon`` (registrations in memory or in a
SQLite file, the UDP broadcast responder); :class:`NameServerDaemon` is a
:class:`pyro_rs.core.Daemon` on top of it, so Python objects can be served next to the
name server as in Pyro4.
"""

import optparse
import os
import sys
import threading
import warnings
import weakref

from pyro_rs import _native, constants, core, errors
from pyro_rs.configuration import config
from pyro_rs.core import _locateNS as locateNS
from pyro_rs.core import _resolve as resolve

__all__ = ["BroadcastServer", "NameServer", "NameServerDaemon", "locateNS", "resolve", "startNS", "startNSloop",
           "type_meta"]


class NameServer:
    """The ``Pyro.NameServer`` object of a :class:`NameServerDaemon`, for local use.

    The registrations live in the Rust name server; these methods reach it through a
    proxy on the daemon's own address, so they work while the daemon serves (which a
    name server daemon does from its creation)."""

    def __init__(self, daemon):
        self._daemon = weakref.ref(daemon)
        self._local = threading.local()

    def _ns(self):
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            daemon = self._daemon()
            if daemon is None:
                raise errors.NamingError("name server daemon is gone")
            proxy = core.Proxy(daemon.uriFor(constants.NAMESERVER_NAME, nat=False))
            proxy._pyroHmacKey = daemon._pyroHmacKey
            self._local.proxy = proxy
        return proxy

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._ns(), name)

    def __repr__(self):
        return f"<{self.__class__.__module__}.{self.__class__.__name__} at 0x{id(self):x}>"


class BroadcastServer:
    """The broadcast responder of a name server. It is run by the Rust name server from
    the start; ``runInThread`` and ``close`` are kept for Pyro4 code that calls them."""

    def __init__(self, location):
        #: ``host:port`` the responder listens on.
        self.locationStr = location

    def runInThread(self):
        """Nothing to do: the responder already runs."""

    def close(self):
        """Nothing to do: the responder stops with its name server daemon."""

    def __repr__(self):
        return f"<{self.__class__.__module__}.{self.__class__.__name__} on {self.locationStr}>"


class NameServerDaemon(core.Daemon):
    """A daemon serving the name server (Pyro4's ``NameServerDaemon``), on the Rust name
    server. Extra keyword arguments pick the broadcast responder and the HMAC key, which
    the Rust daemon needs when it binds."""

    def __init__(self, host=None, port=None, unixsocket=None, nathost=None, natport=None, storage=None,
                 enableBroadcast=False, bchost=None, bcport=None, hmac=None):
        if port is None:
            port = config.NS_PORT
        if hmac and type(hmac) is not bytes:
            hmac = hmac.encode("utf-8")
        self._ns_options = (host, port, enableBroadcast, bchost, bcport, storage or "memory", hmac or None)
        super().__init__(host, port, unixsocket, nathost=nathost, natport=natport)
        uri, internal, lines, bclocation = self._native.ns_info()
        self._ns_uri = uri
        self._ns_internal_uri = internal
        self._ns_startup_lines = lines
        self._bclocation = bclocation
        self._pyroHmacKey = hmac
        self.nameserver = NameServer(self)
        self.nameserver._pyroId = constants.NAMESERVER_NAME
        self.nameserver._pyroDaemon = self
        self.objectsById[constants.NAMESERVER_NAME] = self.nameserver
        # Serve at once: the local NameServer object talks to the daemon over its socket.
        self._native.start()

    def _make_native(self, host, port, unixsocket, nathost, natport, items, serializers, pool_size):
        nshost, nsport, enable_bc, bchost, bcport, storage, hmac = self._ns_options
        return _native.NativeDaemon.nameserver(
            None if nshost is None else str(nshost), None if nsport is None else int(nsport), bool(enable_bc),
            bchost, bcport, unixsocket, nathost, None if natport is None else int(natport), storage, hmac,
            items, serializers, core._dispatch, self._native_hooks(), weakref.ref(self), pool_size)

    def _pyro_startup_lines(self):
        return list(self._ns_startup_lines)

    def __enter__(self):
        if not self.transportServer:
            raise errors.PyroError("cannot reuse this object")
        return self


def startNS(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None,
            unixsocket=None, nathost=None, natport=None, storage=None, hmac=None):
    """Start a name server for use in your own loop: ``(uri, daemon, broadcast server)``.
    The broadcast server is None for a Unix socket or a loopback address (as Pyro4)."""
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage,
                              enableBroadcast=enableBroadcast, bchost=bchost, bcport=bcport, hmac=hmac)
    nsUri = daemon.uriFor(daemon.nameserver)
    bcserver = BroadcastServer(daemon._bclocation) if daemon._bclocation else None
    return nsUri, daemon, bcserver


def startNSloop(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None,
                unixsocket=None, nathost=None, natport=None, storage=None, hmac=None):
    """Start a name server, print what Pyro4 prints, and serve until shut down."""
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage,
                              enableBroadcast=enableBroadcast, bchost=bchost, bcport=bcport, hmac=hmac)
    for line in daemon._pyro_startup_lines():
        print(line)
    sys.stdout.flush()
    try:
        daemon.requestLoop()
    finally:
        daemon.close()
    print("NS shut down.")


def type_meta(class_or_object, prefix="class:"):
    """Name server metadata naming the classes of an object (``class:module.Name``)."""
    if hasattr(class_or_object, "__mro__"):
        return {prefix + c.__module__ + "." + c.__name__
                for c in class_or_object.__mro__ if c.__module__ not in ("builtins", "__builtin__")}
    if hasattr(class_or_object, "__class__"):
        return type_meta(class_or_object.__class__)
    return frozenset()


def main(args=None):
    """``python -m pyro_rs.naming``: Pyro4's name server command line."""
    parser = optparse.OptionParser()
    parser.add_option("-n", "--host", dest="host", help="hostname to bind server on")
    parser.add_option("-p", "--port", dest="port", type="int", help="port to bind server on (0=random)")
    parser.add_option("-u", "--unixsocket", help="Unix domain socket name to bind server on")
    parser.add_option("-s", "--storage", help="Storage system to use (memory, sql:file)", default="memory")
    parser.add_option("", "--bchost", dest="bchost", help="hostname to bind broadcast server on (default is \"\")")
    parser.add_option("", "--bcport", dest="bcport", type="int", help="port to bind broadcast server on (0=random)")
    parser.add_option("", "--nathost", dest="nathost", help="external hostname in case of NAT")
    parser.add_option("", "--natport", dest="natport", type="int", help="external port in case of NAT")
    parser.add_option("-x", "--nobc", dest="enablebc", action="store_false", default=True,
                      help="don't start a broadcast server")
    parser.add_option("-k", "--key", help="the HMAC key to use (deprecated)")
    options, args = parser.parse_args(args)
    if options.key:
        warnings.warn("using -k to supply HMAC key on the command line is a security problem "
                      "and is deprecated since Pyro 4.72. See the documentation for an alternative.", stacklevel=1)
    if "PYRO_HMAC_KEY" in os.environ:
        if options.key:
            raise SystemExit("error: don't use -k and PYRO_HMAC_KEY at the same time")
        options.key = os.environ["PYRO_HMAC_KEY"]
    startNSloop(options.host, options.port, enableBroadcast=options.enablebc,
                bchost=options.bchost, bcport=options.bcport, unixsocket=options.unixsocket,
                nathost=options.nathost, natport=options.natport, storage=options.storage,
                hmac=options.key)


if __name__ == "__main__":
    main()
