"""Pyro4's core API (``Pyro4.core``): URI, Proxy, batches, decorators, name resolution.

The Proxy keeps Pyro4's Python-level behaviour (metadata checks, the oneway set, retries,
annotation hooks, pickling and copying); connecting, framing, HMAC, the serializers and
all network IO are the Rust client's (``_native.NativeProxy``), which runs with the GIL
released. The Daemon is added by the server half of pyro_rs.
"""

import base64
import random
import re
import threading
import time

from pyro_rs import _native, constants, errors, futures, message, util
from pyro_rs.configuration import config

__all__ = [
    "URI",
    "Proxy",
    "_locateNS",
    "_resolve",
    "asyncproxy",
    "batch",
    "behavior",
    "callback",
    "current_context",
    "expose",
    "oneway",
]


class URI:
    """A Pyro object URI: ``PYRO:objectid@host:port``, ``PYRO:objectid@./u:socketpath``,
    ``PYRONAME:name[@nshost[:port]]`` or ``PYROMETA:tag1,tag2[@nshost[:port]]``."""
    uriRegEx = re.compile(r"(?P<protocol>[Pp][Yy][Rr][Oo][a-zA-Z]*):(?P<object>\S+?)(@(?P<location>.+))?$")
    protocol = object = host = port = sockname = None

    def __init__(self, uri):
        if isinstance(uri, URI):
            self.__setstate__(uri.__getstate__())
            return
        if not isinstance(uri, str):
            raise TypeError("uri parameter object is of wrong type")
        self.sockname = self.host = self.port = None
        match = self.uriRegEx.match(uri)
        if not match:
            raise errors.PyroError("invalid uri")
        self.protocol = match.group("protocol").upper()
        self.object = match.group("object")
        location = match.group("location")
        if self.protocol == "PYRONAME":
            self._parseLocation(location, config.NS_PORT)
        elif self.protocol == "PYRO":
            if not location:
                raise errors.PyroError("invalid uri")
            self._parseLocation(location, None)
        elif self.protocol == "PYROMETA":
            self.object = {m.strip() for m in self.object.split(",")}
            self._parseLocation(location, config.NS_PORT)
        else:
            raise errors.PyroError("invalid uri (protocol)")

    def _parseLocation(self, location, defaultPort):
        if not location:
            return
        if location.startswith("./u:"):
            self.sockname = location[4:]
            if not self.sockname or ":" in self.sockname:
                raise errors.PyroError("invalid uri (location)")
            return
        if location.startswith("["):
            if location.startswith("[["):
                raise errors.PyroError("invalid ipv6 address: enclosed in too many brackets")
            m = re.match(r"\[([0-9a-fA-F:%]+)](:(\d+))?", location)
            if not m:
                raise errors.PyroError("invalid ipv6 address: the part between brackets must be a numeric ipv6 address")
            self.host, _, self.port = m.groups()
        else:
            self.host, _, self.port = location.partition(":")
        if not self.port:
            self.port = defaultPort
        try:
            self.port = int(self.port)
        except (ValueError, TypeError):
            raise errors.PyroError("invalid port in uri, port=" + str(self.port))

    @staticmethod
    def isUnixsockLocation(location):
        """True for a Unix domain socket location (``./u:path``)."""
        return location.startswith("./u:")

    @property
    def location(self):
        """The location text (``host:port``, ``[ipv6]:port`` or ``./u:path``), or None."""
        if self.host:
            if ":" in self.host:
                return "[%s]:%d" % (self.host, self.port)  # noqa: UP031
            return "%s:%d" % (self.host, self.port)  # noqa: UP031
        if self.sockname:
            return "./u:" + self.sockname
        return None

    def asString(self):
        """The URI text."""
        if self.protocol == "PYROMETA":
            result = "PYROMETA:" + ",".join(self.object)
        else:
            result = self.protocol + ":" + self.object
        location = self.location
        if location:
            result += "@" + location
        return result

    def __str__(self):
        return self.asString()

    def __repr__(self):
        return f"<{self.__class__.__module__}.{self.__class__.__name__} at 0x{id(self):x}; {self!s}>"

    def __eq__(self, other):
        if not isinstance(other, URI):
            return False
        return self.__getstate__() == other.__getstate__()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.protocol, str(self.object), self.sockname, self.host, self.port))

    def __getstate__(self):
        return self.protocol, self.object, self.sockname, self.host, self.port

    def __setstate__(self, state):
        self.protocol, self.object, self.sockname, self.host, self.port = state

    def __getstate_for_dict__(self):
        return self.__getstate__()

    def __setstate_from_dict__(self, state):
        self.__setstate__(state)


class _CallContext(threading.local):
    """Per-thread call context (Pyro4's ``current_context``)."""

    def __init__(self):
        self.client = None
        self.client_sock_addr = None
        self.seq = 0
        self.msg_flags = 0
        self.serializer_id = 0
        self.annotations = {}
        self.response_annotations = {}
        self.correlation_id = None

    def to_global(self):
        return dict(self.__dict__)

    def from_global(self, values):
        self.client = values["client"]
        self.seq = values["seq"]
        self.msg_flags = values["msg_flags"]
        self.serializer_id = values["serializer_id"]
        self.annotations = values["annotations"]
        self.response_annotations = values["response_annotations"]
        self.correlation_id = values["correlation_id"]
        self.client_sock_addr = values["client_sock_addr"]


current_context = _CallContext()


class _RemoteMethod:
    """A remote method; calling it retries per MAX_RETRIES on closed connections and timeouts."""

    def __init__(self, send, name, max_retries):
        self.__send = send
        self.__name = name
        self.__max_retries = max_retries

    def __getattr__(self, name):
        return _RemoteMethod(self.__send, f"{self.__name}.{name}", self.__max_retries)

    def __call__(self, *args, **kwargs):
        for attempt in range(self.__max_retries + 1):
            try:
                return self.__send(self.__name, args, kwargs)
            except (errors.ConnectionClosedError, errors.TimeoutError):
                if attempt >= self.__max_retries:
                    raise


class Proxy:
    """A proxy for a remote object (Pyro4's ``Proxy``), on the Rust client."""
    __pyroAttributes = frozenset(
        ["__getnewargs__", "__getnewargs_ex__", "__getinitargs__", "_pyroConnection", "_pyroUri",
         "_pyroOneway", "_pyroMethods", "_pyroAttrs", "_pyroTimeout", "_pyroSeq", "_pyroHmacKey",
         "_pyroRawWireResponse", "_pyroHandshake", "_pyroMaxRetries", "_pyroSerializer", "_Proxy__async",
         "_Proxy__pyroHmacKey", "_Proxy__pyroTimeout", "_Proxy__pyroConnLock"])

    def __init__(self, uri, connected_socket=None):
        if connected_socket:
            raise NotImplementedError("proxies on connected sockets are not supported yet")
        if isinstance(uri, str):
            uri = URI(uri)
        elif not isinstance(uri, URI):
            raise TypeError("expected Pyro URI")
        self._pyroUri = uri
        self._pyroConnection = None
        self._pyroSerializer = None
        self._pyroMethods = set()
        self._pyroAttrs = set()
        self._pyroOneway = set()
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self._pyroHandshake = "hello"
        self._pyroMaxRetries = config.MAX_RETRIES
        self.__pyroHmacKey = None
        self.__pyroTimeout = config.COMMTIMEOUT
        self.__pyroConnLock = threading.RLock()
        util.get_serializer(config.SERIALIZER)
        self.__async = False
        current_context.annotations = {}
        current_context.response_annotations = {}

    @property
    def _pyroHmacKey(self):
        """The HMAC key (bytes) of this proxy."""
        return self.__pyroHmacKey

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value):
        if value and type(value) is not bytes:
            value = value.encode("utf-8")
        self.__pyroHmacKey = value

    def __del__(self):
        if hasattr(self, "_pyroConnection"):
            self._pyroRelease()

    def __getattr__(self, name):
        if name in Proxy.__pyroAttributes:
            raise AttributeError(name)  # lets pickle and copy probe safely
        if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            return self._pyroInvoke("__getattr__", (name,), None)
        if config.METADATA and name not in self._pyroMethods:
            raise AttributeError(f"remote object '{self._pyroUri}' has no exposed attribute or method '{name}'")
        if self.__async:
            return _AsyncRemoteMethod(self, name, self._pyroMaxRetries)
        return _RemoteMethod(self._pyroInvoke, name, self._pyroMaxRetries)

    def __setattr__(self, name, value):
        if name in Proxy.__pyroAttributes:
            return super().__setattr__(name, value)
        if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            return self._pyroInvoke("__setattr__", (name, value), None)
        if config.METADATA:
            raise AttributeError(f"remote object '{self._pyroUri}' has no exposed attribute '{name}'")
        return super().__setattr__(name, value)

    def __repr__(self):
        connected = "connected" if self._pyroConnection is not None else "not connected"
        return f"<{self.__class__.__module__}.{self.__class__.__name__} at 0x{id(self):x}; {connected}; for {self._pyroUri}>"

    def __getstate_for_dict__(self):
        encoded_hmac = None
        if self._pyroHmacKey is not None:
            encoded_hmac = "b64:" + base64.b64encode(self._pyroHmacKey).decode("ascii")
        return (self._pyroUri.asString(), tuple(self._pyroOneway), tuple(self._pyroMethods),
                tuple(self._pyroAttrs), self.__pyroTimeout, encoded_hmac, self._pyroHandshake,
                self._pyroMaxRetries, self._pyroSerializer)

    def __setstate_from_dict__(self, state):
        uri = URI(state[0])
        hmac_key = state[5]
        if hmac_key:
            if hmac_key.startswith("b64:"):
                hmac_key = base64.b64decode(hmac_key[4:].encode("ascii"))
            else:
                raise errors.ProtocolError("hmac encoding error")
        serializer = None if len(state) < 9 else state[8]
        self.__setstate__((uri, set(state[1]), set(state[2]), set(state[3]), state[4], hmac_key,
                           state[6], state[7], serializer))

    def __getstate__(self):
        return (self._pyroUri, self._pyroOneway, self._pyroMethods, self._pyroAttrs, self.__pyroTimeout,
                self._pyroHmacKey, self._pyroHandshake, self._pyroMaxRetries, self._pyroSerializer)

    def __setstate__(self, state):
        # Timeout and retries come from the local config, as in Pyro4.
        (self._pyroUri, self._pyroOneway, self._pyroMethods, self._pyroAttrs, _,
         self._pyroHmacKey, self._pyroHandshake) = state[:7]
        self._pyroSerializer = None if len(state) < 9 else state[8]
        self.__pyroTimeout = config.COMMTIMEOUT
        self._pyroMaxRetries = config.MAX_RETRIES
        self._pyroConnection = None
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self.__pyroConnLock = threading.RLock()
        self.__async = False

    def __copy__(self):
        p = type(self)(URI(self._pyroUri))
        p._pyroOneway = set(self._pyroOneway)
        p._pyroMethods = set(self._pyroMethods)
        p._pyroAttrs = set(self._pyroAttrs)
        p._pyroSerializer = self._pyroSerializer
        p._pyroTimeout = self._pyroTimeout
        p._pyroHandshake = self._pyroHandshake
        p._pyroHmacKey = self._pyroHmacKey
        p._pyroRawWireResponse = self._pyroRawWireResponse
        p._pyroMaxRetries = self._pyroMaxRetries
        p.__async = self.__async
        return p

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self._pyroRelease()

    def __eq__(self, other):
        if other is self:
            return True
        return isinstance(other, Proxy) and other._pyroUri == self._pyroUri

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._pyroUri)

    def __dir__(self):
        result = dir(self.__class__) + list(self.__dict__.keys())
        return sorted(set(result) | self._pyroMethods | self._pyroAttrs)

    def _pyroRelease(self):
        """Close the connection to the daemon; the next call reconnects."""
        with self.__pyroConnLock:
            conn = self._pyroConnection
            if conn is not None:
                self._pyroConnection = None
                conn.release()

    def _pyroBind(self):
        """Connect now and, for PYRONAME/PYROMETA, replace the URI by the resolved PYRO one.
        False if already connected."""
        return self.__pyroCreateConnection(True)

    def __pyroGetTimeout(self):
        return self.__pyroTimeout

    def __pyroSetTimeout(self, timeout):
        self.__pyroTimeout = timeout
        conn = self._pyroConnection
        if conn is not None:
            self.__configure(conn, self.__serializer())

    _pyroTimeout = property(__pyroGetTimeout, __pyroSetTimeout,
                            doc="Timeout in seconds for connects and calls (None or 0 = none).")

    def __serializer(self):
        return util.get_serializer(self._pyroSerializer or config.SERIALIZER)

    def __configure(self, conn, serializer):
        conn.configure(self.__pyroTimeout or None, self.__pyroHmacKey, serializer.name, config.METADATA)

    def _pyroInvoke(self, methodname, vargs, kwargs, flags=0, objectId=None):
        """One remote call (Pyro4's ``_pyroInvoke``)."""
        current_context.response_annotations = {}
        with self.__pyroConnLock:
            if self._pyroConnection is None:
                self.__pyroCreateConnection()
            conn = self._pyroConnection
            serializer = self.__serializer()
            self.__configure(conn, serializer)
            conn.set_annotations(self.__annotations())
            if methodname in self._pyroOneway:
                flags |= message.FLAGS_ONEWAY
            try:
                is_stream, result = conn.invoke(objectId, methodname, vargs, kwargs, flags, serializer.replace,
                                                serializer.dict_to_class, serializer.subclass_as_base)
            except (errors.CommunicationError, KeyboardInterrupt):
                # A reply may still be in flight: never reuse this connection.
                self._pyroRelease()
                raise
            finally:
                self._pyroSeq = conn.seq()
            annotations = conn.response_annotations()
            if annotations:
                current_context.response_annotations = annotations
                self._pyroResponseAnnotations(annotations, message.MSG_RESULT)
            if is_stream:
                return _StreamResultIterator(result, self)
            return result

    def __pyroCreateConnection(self, replaceUri=False):
        with self.__pyroConnLock:
            if self._pyroConnection is not None:
                return False
            serializer = self.__serializer()
            conn = _native.NativeProxy(str(self._pyroUri), config._native_items())
            self.__configure(conn, serializer)
            conn.set_handshake(self._pyroHandshake, serializer.replace)
            conn.set_annotations(self.__annotations(False))
            conn.connect(serializer.dict_to_class)
            self._pyroConnection = conn
            self._pyroSeq = conn.seq()
            if replaceUri:
                self._pyroUri = URI(conn.uri())
            methods, oneway, attrs = conn.metadata()
            if methods or attrs:
                self._pyroMethods, self._pyroOneway, self._pyroAttrs = set(methods), set(oneway), set(attrs)
            try:
                self._pyroValidateHandshake(conn.handshake_response(serializer.dict_to_class))
            except Exception:
                self._pyroRelease()
                raise
            annotations = conn.response_annotations()
            if annotations:
                self._pyroResponseAnnotations(annotations, message.MSG_CONNECTOK)
            return True

    def _pyroGetMetadata(self, objectId=None, known_metadata=None):
        """Get the remote object's metadata (methods, oneway methods, attributes)."""
        objectId = objectId or self._pyroUri.object
        if self._pyroConnection is None and not known_metadata:
            self.__pyroCreateConnection()
            if self._pyroMethods or self._pyroAttrs:
                return
        result = known_metadata or self._pyroInvoke("get_metadata", [objectId], {},
                                                    objectId=constants.DAEMON_NAME)
        if not result:
            return
        self._pyroOneway = set(result["oneway"])
        self._pyroMethods = set(result["methods"])
        self._pyroAttrs = set(result["attrs"])
        if not self._pyroMethods and not self._pyroAttrs:
            raise errors.PyroError("remote object doesn't expose any methods or attributes. "
                                   "Did you forget setting @expose on them?")

    def _pyroReconnect(self, tries=100000000):
        """Release, then connect again; up to ``tries`` attempts 2 seconds apart."""
        self._pyroRelease()
        while tries:
            try:
                self.__pyroCreateConnection()
                return
            except errors.CommunicationError:
                tries -= 1
                if tries:
                    time.sleep(2)
        raise errors.ConnectionClosedError("failed to reconnect")

    def _pyroBatch(self):
        """A batch adapter: collect calls, then run them in one request."""
        return _BatchProxyAdapter(self)

    def _pyroAsync(self, asynchronous=True):
        """Switch this proxy to asynchronous calls (results are FutureResults)."""
        self.__async = asynchronous

    def _pyroInvokeBatch(self, calls, oneway=False):
        flags = message.FLAGS_BATCH
        if oneway:
            flags |= message.FLAGS_ONEWAY
        return self._pyroInvoke("<batch>", calls, None, flags)

    def _pyroAnnotations(self):
        """Override to add annotations (4-char str keys, bytes values) to every request."""
        return {}

    def _pyroResponseAnnotations(self, annotations, msgtype):
        """Override to process the annotations of each response."""

    def _pyroValidateHandshake(self, response):
        """Override to check the daemon's handshake response; raise to refuse the connection."""

    def __annotations(self, clear=True):
        annotations = current_context.annotations
        if current_context.correlation_id:
            annotations["CORR"] = current_context.correlation_id.bytes
        else:
            annotations.pop("CORR", None)
        annotations.update(self._pyroAnnotations())
        if clear:
            current_context.annotations = {}
        return annotations


class _StreamResultIterator:
    """A remote iterator: items are fetched one by one from the daemon."""

    def __init__(self, streamId, proxy):
        self.streamId = streamId
        self.proxy = proxy
        self.pyroseq = proxy._pyroSeq

    def __iter__(self):
        return self

    def __next__(self):
        if self.proxy is None:
            raise StopIteration
        if self.proxy._pyroConnection is None:
            raise errors.ConnectionClosedError("the proxy for this stream result has been closed")
        self.pyroseq += 1
        try:
            return self.proxy._pyroInvoke("get_next_stream_item", [self.streamId], {},
                                          objectId=constants.DAEMON_NAME)
        except (StopIteration, GeneratorExit):
            # The daemon ended the stream itself: no close_stream needed later.
            self.proxy = None
            raise

    next = __next__

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110
            pass

    def close(self):
        if self.proxy and self.proxy._pyroConnection is not None:
            if self.pyroseq == self.proxy._pyroSeq:
                self.proxy._pyroInvoke("close_stream", [self.streamId], {},
                                       flags=message.FLAGS_ONEWAY, objectId=constants.DAEMON_NAME)
            else:
                try:
                    with self.proxy.__copy__() as closing:
                        closing._pyroInvoke("close_stream", [self.streamId], {},
                                            flags=message.FLAGS_ONEWAY, objectId=constants.DAEMON_NAME)
                except errors.CommunicationError:
                    pass
        self.proxy = None


class _BatchedRemoteMethod:
    def __init__(self, calls, name):
        self.__calls = calls
        self.__name = name

    def __getattr__(self, name):
        return _BatchedRemoteMethod(self.__calls, f"{self.__name}.{name}")

    def __call__(self, *args, **kwargs):
        self.__calls.append((self.__name, args, kwargs))


class _BatchProxyAdapter:
    """Collects method calls; calling it runs them in one request and returns a
    generator of the results (a remote exception is raised where it occurs)."""

    def __init__(self, proxy):
        self.__proxy = proxy
        self.__calls = []

    def __getattr__(self, name):
        return _BatchedRemoteMethod(self.__calls, name)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def __copy__(self):
        copy = type(self)(self.__proxy)
        copy.__calls = list(self.__calls)
        return copy

    def __resultsgenerator(self, results):
        for result in results:
            if isinstance(result, futures._ExceptionWrapper):
                result.raiseIt()
            else:
                yield result

    def __call__(self, oneway=False, asynchronous=False):
        if oneway and asynchronous:
            raise errors.PyroError("async oneway calls make no sense")
        if asynchronous:
            return _AsyncRemoteMethod(self, "<asyncbatch>", self.__proxy._pyroMaxRetries)()
        results = self.__proxy._pyroInvokeBatch(self.__calls, oneway)
        self.__calls = []
        if not oneway:
            return self.__resultsgenerator(results)

    def _pyroInvoke(self, name, args, kwargs):
        results = self.__proxy._pyroInvokeBatch(self.__calls)
        self.__calls = []
        return self.__resultsgenerator(results)


class _AsyncRemoteMethod:
    """An asynchronous remote call: runs in a thread on a copy of the proxy."""

    def __init__(self, proxy, name, max_retries):
        self.__proxy = proxy
        self.__name = name
        self.__max_retries = max_retries

    def __getattr__(self, name):
        return _AsyncRemoteMethod(self.__proxy, f"{self.__name}.{name}", self.__max_retries)

    def __call__(self, *args, **kwargs):
        result = futures.FutureResult()
        thread = threading.Thread(target=self.__asynccall, args=(result, args, kwargs))
        thread.daemon = True
        thread.start()
        return result

    def __asynccall(self, asyncresult, args, kwargs):
        for attempt in range(self.__max_retries + 1):
            try:
                with self.__proxy.__copy__() as proxy:
                    delay = 0.1 + random.random() / 5
                    while not proxy._pyroConnection:
                        try:
                            proxy._pyroBind()
                        except errors.CommunicationError as x:
                            if "no free workers" not in str(x):
                                raise
                            time.sleep(delay)
                            delay += 0.4 + random.random() / 2
                            if 0 < config.COMMTIMEOUT / 2 < delay:
                                raise
                    value = proxy._pyroInvoke(self.__name, args, kwargs)
                asyncresult.value = value
                return
            except (errors.ConnectionClosedError, errors.TimeoutError) as x:
                if attempt >= self.__max_retries:
                    asyncresult.value = futures._ExceptionWrapper(x)
                    return
            except Exception as x:  # noqa: BLE001
                asyncresult.value = futures._ExceptionWrapper(x)
                return


def batch(proxy):
    """A batch adapter for the proxy."""
    return proxy._pyroBatch()


def asyncproxy(proxy, asynchronous=True):
    """Switch a proxy to asynchronous (or back to normal) calls."""
    proxy._pyroAsync(asynchronous)


# ---- decorators (read by the Daemon) ---------------------------------------------------

def callback(method):
    """Mark a method as a callback: its exceptions are logged, not only raised remotely."""
    method._pyroCallback = True
    return method


def oneway(method):
    """Mark a method as oneway: clients do not wait for it."""
    method._pyroOneway = True
    return method


def expose(method_or_class):
    """Expose a method, property or (all public members of) a class to remote access."""
    if isinstance(method_or_class, property):
        method_or_class.fget._pyroExposed = True
        return method_or_class
    if isinstance(method_or_class, (staticmethod, classmethod)):
        raise AttributeError("using @expose on a classmethod/staticmethod must be done "  # noqa: TRY004
                             "after @classmethod/@staticmethod. Method: " + str(method_or_class))
    name = getattr(method_or_class, "__name__", None)
    if name and name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
        raise AttributeError("exposing private names (starting with _) is not allowed")
    if isinstance(method_or_class, type):
        for attr in list(vars(method_or_class)):
            if util.is_private_attribute(attr):
                continue
            thing = getattr(method_or_class, attr)
            if isinstance(thing, property):
                thing.fget._pyroExposed = True
            elif callable(thing):
                try:
                    thing._pyroExposed = True
                except AttributeError:
                    pass
    method_or_class._pyroExposed = True
    return method_or_class


def behavior(instance_mode="session", instance_creator=None):
    """Class decorator: the instance mode (single, session, percall) for a Daemon."""
    if not isinstance(instance_mode, str):
        raise SyntaxError("behavior decorator is missing argument(s)")  # noqa: TRY004
    if instance_mode not in ("single", "session", "percall"):
        raise ValueError("invalid instance mode: " + instance_mode)
    if instance_creator and not callable(instance_creator):
        raise TypeError("instance_creator must be a callable")

    def _behavior(clazz):
        if not isinstance(clazz, type):
            raise TypeError("behavior decorator can only be used on a class")
        clazz._pyroInstancing = (instance_mode, instance_creator)
        return clazz
    return _behavior


# ---- name server location and resolution -----------------------------------------------

def _locateNS(host=None, port=None, broadcast=True, hmac_key=None):
    """A proxy for the name server: at host[:port], or found by NS_HOST and broadcast."""
    if hmac_key and type(hmac_key) is not bytes:
        hmac_key = hmac_key.encode("utf-8")
    if host is not None:
        host = str(host)
    uri_text = _native.locate_ns(host, port, broadcast, hmac_key, config._native_items())
    proxy = Proxy(uri_text)
    proxy._pyroHmacKey = hmac_key
    return proxy


def _resolve(uri, hmac_key=None):
    """A ``PYRO:`` URI for a ``PYRONAME:``/``PYROMETA:`` one (looked up in the name server)."""
    if isinstance(uri, str):
        uri = URI(uri)
    elif not isinstance(uri, URI):
        raise TypeError("can only resolve Pyro URIs")
    if uri.protocol == "PYRO":
        return uri
    with _locateNS(uri.host, uri.port, hmac_key=hmac_key) as nameserver:
        if uri.protocol == "PYRONAME":
            return nameserver.lookup(uri.object)
        if uri.protocol == "PYROMETA":
            candidates = nameserver.list(metadata_all=uri.object)
            if not candidates:
                raise errors.NamingError(f"no registrations available with desired metadata properties {uri.object}")
            return URI(random.choice(list(candidates.values())))
        raise errors.PyroError("invalid uri protocol")


def _serialize_core_object_to_dict(obj):
    return {"__class__": "Pyro4.core." + obj.__class__.__name__, "state": obj.__getstate_for_dict__()}


# URI and Proxy cross the wire as Pyro4.core.URI / Pyro4.core.Proxy in every serializer.
for _cls in (URI, Proxy):
    util.SerializerBase.register_class_to_dict(_cls, _serialize_core_object_to_dict, serpent_too=True)
util.SerializerBase.register_class_to_dict(futures._ExceptionWrapper,
                                           futures._ExceptionWrapper.__serialized_dict__, serpent_too=True)
del _cls
