"""Pyro4's core API (``Pyro4.core``): URI, Proxy, batches, decorators, name resolution.

The Proxy keeps Pyro4's Python-level behaviour (metadata checks, the oneway set, retries,
annotation hooks, pickling and copying); connecting, framing, HMAC, the serializers and
all network IO are the Rust client's (``_native.NativeProxy``), which runs with the GIL
released. The Daemon is added by the server half of pyro_rs.
"""

import base64
import collections.abc
import inspect
import logging
import random
import re
import threading
import time
import uuid
import weakref

from pyro_rs import _native, constants, errors, futures, message, util
from pyro_rs.configuration import config

__all__ = [
    "URI",
    "Daemon",
    "DaemonObject",
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


def _call_client(call):
    daemon = call.daemon_ref()
    return None if daemon is None else daemon._connection_for(call.conn_id, call.client_sock_addr)


def _context_item(name, from_call, default):
    """A ``current_context`` attribute: set by the code that runs, else taken from the
    request being served (computed on first use), else the default."""

    def get(self):
        call = self._call
        values = self._own if call is None else call.values()
        try:
            return values[name]
        except KeyError:
            value = default() if call is None else from_call(call)
            values[name] = value
            return value

    def set(self, value):
        call = self._call
        values = self._own if call is None else call.values()
        values[name] = value

    return property(get, set)


class _CallContext(threading.local):
    """Per-thread call context (Pyro4's ``current_context``).

    While a daemon thread serves a request, ``_call`` is that request's state and the
    attributes describe it (each computed when first read); values set during the call
    belong to that call. On other threads the attributes are plain per-thread values.
    """

    _FIELDS = ("client", "client_sock_addr", "seq", "msg_flags", "serializer_id", "annotations",
               "response_annotations", "correlation_id")

    def __init__(self):
        self._call = None
        self._own = {}

    client = _context_item("client", _call_client, lambda: None)
    client_sock_addr = _context_item("client_sock_addr", lambda c: c.client_sock_addr, lambda: None)
    seq = _context_item("seq", lambda c: c.seq, lambda: 0)
    msg_flags = _context_item("msg_flags", lambda c: c.msg_flags, lambda: 0)
    serializer_id = _context_item("serializer_id", lambda c: c.serializer_id, lambda: 0)
    annotations = _context_item("annotations", lambda c: c.annotations, dict)
    response_annotations = _context_item("response_annotations", lambda c: {}, dict)
    correlation_id = _context_item("correlation_id", lambda c: uuid.UUID(bytes=c.correlation_bytes),
                                   lambda: None)

    def to_global(self):
        return {name: getattr(self, name) for name in self._FIELDS}

    def from_global(self, values):
        for name in self._FIELDS:
            setattr(self, name, values[name])

    def track_resource(self, resource):
        """Close ``resource`` (call its ``close()``) when this client disconnects."""
        if self.client:
            self.client.tracked_resources.add(resource)
        else:
            raise errors.PyroError("cannot track resource on a connectionless call")

    def untrack_resource(self, resource):
        """Stop tracking a resource."""
        if self.client:
            self.client.tracked_resources.discard(resource)
        else:
            raise errors.PyroError("cannot untrack resource on a connectionless call")


current_context = _CallContext()


# The serializer the last call looked up, by name (a process-wide one-entry cache).
_last_serializer = (None, None)


# A remote method (``proxy.name``): calling it retries per MAX_RETRIES on closed
# connections and timeouts. Native, since one is made for every remote call.
_RemoteMethod = _native.RemoteMethod


class Proxy:
    """A proxy for a remote object (Pyro4's ``Proxy``), on the Rust client."""
    __pyroAttributes = frozenset(
        ["__getnewargs__", "__getnewargs_ex__", "__getinitargs__", "_pyroConnection", "_pyroUri",
         "_pyroOneway", "_pyroMethods", "_pyroAttrs", "_pyroTimeout", "_pyroSeq", "_pyroHmacKey",
         "_pyroRawWireResponse", "_pyroHandshake", "_pyroMaxRetries", "_pyroSerializer", "_Proxy__async",
         "_Proxy__pyroHmacKey", "_Proxy__pyroTimeout", "_Proxy__pyroConnLock", "_Proxy__configured",
         "_Proxy__annotated"])

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
        # Proxy state is read from the instance dict: each self.<name> on a class with
        # __getattr__ takes CPython's slow attribute hook, and this runs for every call.
        state = self.__dict__
        try:
            methods, attrs = state["_pyroMethods"], state["_pyroAttrs"]
        except KeyError:
            raise AttributeError(name) from None  # not initialised (a bare instance)
        if config.METADATA and not methods and not attrs:
            self._pyroGetMetadata()
            methods, attrs = self._pyroMethods, self._pyroAttrs
        if name in attrs:
            return self._pyroInvoke("__getattr__", (name,), None)
        if config.METADATA and name not in methods:
            raise AttributeError(f"remote object '{self._pyroUri}' has no exposed attribute or method '{name}'")
        if state["_Proxy__async"]:
            return _AsyncRemoteMethod(self, name, state["_pyroMaxRetries"])
        return _RemoteMethod(self._pyroInvoke, name, state["_pyroMaxRetries"])

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
        global _last_serializer
        name = self._pyroSerializer or config.SERIALIZER
        last = _last_serializer
        if last[0] == name:
            return last[1]
        serializer = util.get_serializer(name)
        _last_serializer = (name, serializer)
        return serializer

    def __configure(self, conn, serializer):
        # The settings can change between calls; the native proxy hears of changes only.
        settings = (conn, self.__pyroTimeout or None, self.__pyroHmacKey, serializer.name, config.METADATA)
        state = self.__dict__
        if settings != state.get("_Proxy__configured"):
            conn.configure(*settings[1:])
            state["_Proxy__configured"] = settings

    def _pyroInvoke(self, methodname, vargs, kwargs, flags=0, objectId=None):
        """One remote call (Pyro4's ``_pyroInvoke``)."""
        # Proxy state straight from the instance dict (see __getattr__): this runs for
        # every remote call.
        state = self.__dict__
        with state["_Proxy__pyroConnLock"]:
            conn = state["_pyroConnection"]
            if conn is None:
                self.__pyroCreateConnection()
                conn = state["_pyroConnection"]
            # The steps of __serializer, __configure and __annotations, inline for the
            # common case.
            name = state["_pyroSerializer"] or config.SERIALIZER
            last = _last_serializer
            serializer = last[1] if last[0] == name else self.__serializer()
            settings = (conn, state["_Proxy__pyroTimeout"] or None, state["_Proxy__pyroHmacKey"], serializer.name,
                        config.METADATA)
            if settings != state.get("_Proxy__configured"):
                conn.configure(*settings[1:])
                state["_Proxy__configured"] = settings
            ctx = current_context
            local = ctx.__dict__  # one per-thread lookup for both fields
            own = local["_own"] if local["_call"] is None else None
            if (own is not None and not own.get("annotations") and own.get("correlation_id") is None
                    and type(self)._pyroAnnotations is _plain_annotations):
                annotations = None  # a client thread that set none: nothing to add
            else:
                annotations = self.__annotations()
            # Empty annotations need telling once, not on every call.
            if annotations or state.get("_Proxy__annotated", True):
                conn.set_annotations(annotations or {})
                state["_Proxy__annotated"] = bool(annotations)
            if methodname in state["_pyroOneway"]:
                flags |= message.FLAGS_ONEWAY
            try:
                if serializer.serializer_id == message.SERIALIZER_PICKLE:
                    try:
                        is_stream, result = self.__invokePickled(conn, serializer, methodname, vargs, kwargs,
                                                                 flags, objectId)
                    finally:
                        state["_pyroSeq"] = conn.seq()
                    annotations = conn.response_annotations()
                else:
                    try:
                        is_stream, result, state["_pyroSeq"], annotations = conn.invoke(
                            objectId, methodname, vargs, kwargs, flags, serializer.replace,
                            serializer.dict_to_class, serializer.subclass_as_base)
                    except BaseException:
                        state["_pyroSeq"] = conn.seq()
                        raise
            except (errors.CommunicationError, KeyboardInterrupt):
                # A reply may still be in flight: never reuse this connection.
                current_context.response_annotations = {}
                self._pyroRelease()
                raise
            except BaseException:
                current_context.response_annotations = {}
                raise
            # Pyro4 clears them before the call; set once here, to the reply's or none.
            if own is not None:
                own["response_annotations"] = annotations or {}
            else:
                current_context.response_annotations = annotations or {}
            if annotations:
                self._pyroResponseAnnotations(annotations, message.MSG_RESULT)
            if is_stream:
                return _StreamResultIterator(result, self)
            return result

    @staticmethod
    def __invokePickled(conn, serializer, methodname, vargs, kwargs, flags, objectId):
        # Pyro4's PickleSerializer: Python's pickle makes the payload (objectId, method,
        # vargs, kwargs) and reads the reply; the Rust client only frames, sends and checks.
        hook = serializer.dict_to_class
        objectId = objectId or conn.connect_for_call(hook)
        reply = conn.invoke_raw(flags, serializer.serializer_id,
                                serializer.dumps((objectId, methodname, vargs, kwargs)), hook)
        if reply is None:
            return False, None  # oneway
        reply_flags, data, stream_id = reply
        if stream_id is not None:
            return True, stream_id
        result = serializer.loads(data)
        if reply_flags & message.FLAGS_EXCEPTION:
            raise result  # inspect the remote traceback too (result._pyroTraceback)
        return False, result

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
        ctx = current_context
        if ctx._call is None:
            # A client thread: the values are plain (no request to compute them from).
            own = ctx._own
            annotations = own.get("annotations")
            if annotations is None:
                annotations = own["annotations"] = {}
            correlation_id = own.get("correlation_id")
        else:
            annotations = ctx.annotations
            correlation_id = ctx.correlation_id
        if correlation_id:
            annotations["CORR"] = correlation_id.bytes
        elif annotations:
            annotations.pop("CORR", None)
        extra = self._pyroAnnotations()
        if extra:
            annotations.update(extra)
        if clear and annotations:
            current_context.annotations = {}
        return annotations


# Proxy's own request-annotations hook (a subclass may override it).
_plain_annotations = Proxy._pyroAnnotations


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


# A method of a batch (``batch.name``): calling it records the call in the batch.
_BatchedRemoteMethod = _native.BatchedMethod


class _BatchProxyAdapter:
    """Collects method calls; calling it runs them in one request and returns a
    generator of the results (a remote exception is raised where it occurs)."""

    def __init__(self, proxy):
        self.__proxy = proxy
        self.__calls = []

    def __getattr__(self, name):
        # Kept in the instance dict: the next lookup of this name is a dict hit, not a
        # failed attribute lookup (an AttributeError built and cleared) plus this call.
        # The method holds the call list only, never this adapter, so no cycle forms;
        # the list is therefore emptied in place after each run.
        method = _BatchedRemoteMethod(self.__calls, name)
        self.__dict__[name] = method
        return method

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
        results = self.__proxy._pyroInvokeBatch(self.__calls[:], oneway)
        self.__calls.clear()  # kept when the run failed, as in Pyro4
        if not oneway:
            return self.__resultsgenerator(results)

    def _pyroInvoke(self, name, args, kwargs):
        results = self.__proxy._pyroInvokeBatch(self.__calls[:])
        self.__calls.clear()
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


# ---- the daemon ------------------------------------------------------------------------

log = logging.getLogger("pyro_rs.core")

_ST_VALUE, _ST_ITER, _ST_EXC = 0, 1, 2
_worker_state = threading.local()
_lazy_dict_iterator_types = (type({}.keys()), type({}.values()), type({}.items()))


class DaemonObject:
    """The ``Pyro.Daemon`` object of every daemon. Remote calls to it are answered by the
    Rust daemon; this class gives local code the same methods as Pyro4's."""

    def __init__(self, daemon):
        self.daemon = daemon

    @expose
    def registered(self):
        return list(self.daemon._native.registered())

    @expose
    def ping(self):
        pass

    @expose
    def info(self):
        return (f"{constants.DAEMON_NAME} bound on {self.daemon.locationStr}, NAT {self.daemon.natLocationStr}, "
                f"{len(self.daemon.objectsById)} objects registered. Servertype: <pyro_rs Rust daemon>")

    @expose
    def get_metadata(self, objectId, as_lists=False):
        obj = self.daemon.objectsById.get(objectId)
        if obj is None:
            raise errors.DaemonError("unknown object")
        return util.get_exposed_members(obj, only_exposed=config.REQUIRE_EXPOSE, as_lists=as_lists)


class _PeerSocket:
    """What ``conn.sock`` offers in a Pyro4 ``SocketConnection``: the peer's address."""

    def __init__(self, addr):
        self._addr = addr

    def getpeername(self):
        return self._addr


class _ClientConnection:
    """A client connection as the daemon hooks see it (Pyro4's ``SocketConnection``):
    ``sock.getpeername()``, ``pyroInstances`` (session objects), ``tracked_resources``,
    and any attribute a ``validateHandshake``/method sets."""

    def __init__(self, conn_id, addr):
        self.conn_id = conn_id
        self.sock = _PeerSocket(addr)
        self.pyroInstances = {}
        self.tracked_resources = set()
        self.keep_open = False

    def __repr__(self):
        return f"<{self.__class__.__module__}.SocketConnection at 0x{id(self):x}; {self.sock.getpeername()}>"


def _exception_parts(exc):
    """What the Rust daemon sends for an exception: its Pyro4 class name, args, attributes,
    the formatted traceback (``_pyroTraceback``) and Pyro4's fallback text."""
    tb = util.formatTraceback(type(exc), exc, exc.__traceback__, config.DETAILED_TRACEBACK)
    cls = type(exc)
    if cls.__module__ == errors.__name__:
        name = "Pyro4.errors." + cls.__name__
    else:
        name = cls.__module__ + "." + cls.__name__
    try:
        attrs = dict(vars(exc))
    except TypeError:
        attrs = {}
    attrs.pop("_pyroTraceback", None)
    return name, tuple(exc.args), attrs, tb, f"{cls}: {exc}"


def _failure_parts(obj, name, exc):
    """``_exception_parts`` for a failed method call; a failing ``@callback`` method is
    logged in the daemon too, as Pyro4 re-raises it there."""
    parts = _exception_parts(exc)
    if getattr(getattr(obj, name, None), "_pyroCallback", False):
        log.warning("error during handleRequest: %s; %s", exc, "".join(parts[3]))
    return parts


def _stream_check(data):
    if type(data) in _lazy_dict_iterator_types:
        raise errors.PyroError("won't serialize or stream lazy dict iterators, convert to list yourself")


def _dispatch(daemon_ref, entry, kind, name, args, kwargs, ctx):
    """The Python part of Pyro4's ``handleRequest``, run on a daemon worker thread for
    every call the Rust daemon routes to a Python object. Returns ``(status, value,
    response annotations)``; exceptions are returned as ``_exception_parts``."""
    _worker_state.active = True
    is_callback = False
    try:
        daemon = daemon_ref()
        if daemon is None:
            raise errors.DaemonError("daemon is gone")
        if kind == "next":
            return _ST_VALUE, next(entry), None
        if kind == "handshake":
            return _ST_VALUE, daemon.validateHandshake(_ClientConnection(None, entry), args[0]), None
        current_context._call = ctx
        conn = current_context.client
        obj = entry
        if inspect.isclass(obj):
            obj = daemon._getInstance(obj, conn)
        if kind == "get":
            data = util.get_exposed_property_value(obj, name, only_exposed=config.REQUIRE_EXPOSE)
        elif kind == "set":
            data = util.set_exposed_property_value(obj, name, args[0], only_exposed=config.REQUIRE_EXPOSE)
        else:
            method = util.getAttribute(obj, name)
            is_callback = getattr(method, "_pyroCallback", False)
            data = method(*args, **(kwargs or {}))
            if not ctx.msg_flags & message.FLAGS_ONEWAY and (isinstance(data, collections.abc.Iterator)
                                                             or inspect.isgenerator(data)):
                _stream_check(data)
                return _ST_ITER, data, daemon._response_annotations()
        return _ST_VALUE, data, daemon._response_annotations()
    except Exception as x:  # noqa: BLE001 - every exception goes back to the client
        parts = _exception_parts(x)
        if is_callback:
            # Pyro4 re-raises a @callback's exception in the daemon: it is logged here too.
            log.warning("error during handleRequest: %s; %s", x, "".join(parts[3]))
        return _ST_EXC, parts, None
    finally:
        _worker_state.active = False


def _in_worker():
    return getattr(_worker_state, "active", False) or _native.in_daemon_thread()


class Daemon:
    """Pyro daemon (Pyro4's ``Daemon``): serves registered objects to Pyro clients.

    The sockets, the Pyro protocol, HMAC and the serializers are the Rust daemon's; Python
    methods run on a bounded pool of THREADPOOL_SIZE worker threads (one for SERVERTYPE
    ``multiplex``), one call at a time per client connection.
    """

    def __init__(self, host=None, port=0, unixsocket=None, nathost=None, natport=None, interface=DaemonObject,
                 connected_socket=None):
        if connected_socket:
            raise NotImplementedError("daemons on connected sockets are not supported by pyro_rs")
        if host is None:
            host = config.HOST
        if nathost is None:
            nathost = config.NATHOST
        if natport is None and nathost is not None:
            natport = config.NATPORT
        if nathost and unixsocket:
            raise ValueError("cannot use nathost together with unixsocket")
        if (nathost is None) ^ (natport is None):
            raise ValueError("must provide natport with nathost")
        if config.SERVERTYPE == "thread":
            pool_size = max(1, int(config.THREADPOOL_SIZE))
        elif config.SERVERTYPE == "multiplex":
            pool_size = 1
        else:
            raise errors.PyroError(f"invalid server type '{config.SERVERTYPE}'")
        accepted = config.SERIALIZERS_ACCEPTED
        if isinstance(accepted, str):
            accepted = accepted.split(",")
        accepted = [a.strip() for a in accepted if a.strip()]
        for name in accepted:
            if name not in ("pickle", "dill", "cloudpickle", "msgpack"):
                util.get_serializer(name)  # unknown names fail here, as in Pyro4
        serializers = {ser.serializer_id: (ser.replace, ser.dict_to_class, ser.subclass_as_base)
                       for ser in util._serializers.values()}
        items = []
        for item in ("COMMTIMEOUT", "POLLTIMEOUT", "ONEWAY_THREADED", "ITER_STREAMING", "ITER_STREAM_LIFETIME",
                     "ITER_STREAM_LINGER", "MAX_MESSAGE_SIZE", "COMPRESSION", "SOCK_REUSE", "PREFER_IP_VERSION"):
            value = getattr(config, item)
            items.append((item, ("true" if value else "false") if isinstance(value, bool) else str(value)))
        items.append(("SERIALIZERS_ACCEPTED", ",".join(accepted)))
        self.__mustshutdown = threading.Event()
        self.__loopstopped = threading.Event()
        self.__loopstopped.set()
        self._native = self._make_native(host, port, unixsocket, nathost, natport, items, serializers, pool_size)
        #: ``host:port`` (or ``./u:path``) the daemon listens on.
        self.locationStr = self._native.location_str()
        natport_for_loc = natport
        if natport == 0:
            natport_for_loc = int(self.locationStr.rsplit(":", 1)[1])
        #: ``nathost:natport`` advertised in URIs, or None.
        self.natLocationStr = f"{nathost}:{natport_for_loc}" if nathost else None
        pyroObject = interface(self)
        pyroObject._pyroId = constants.DAEMON_NAME
        #: Registered objects and classes by id.
        self.objectsById = {pyroObject._pyroId: pyroObject}
        self.__pyroHmacKey = None
        self._pyroInstances = {}
        self._connections = {}
        self.streaming_responses = {}
        self.create_single_instance_lock = threading.Lock()
        self.housekeeper_lock = threading.Lock()
        self.transportServer = self._native  # truthy while open, as Pyro4's

    def _make_native(self, host, port, unixsocket, nathost, natport, items, serializers, pool_size):
        validate = type(self).validateHandshake is not Daemon.validateHandshake
        return _native.NativeDaemon(str(host), int(port), unixsocket, nathost,
                                    None if natport is None else int(natport), None, items,
                                    serializers, _dispatch, self._native_hooks(), weakref.ref(self),
                                    validate, pool_size)

    def _native_hooks(self):
        custom_annotations = type(self).annotations is not Daemon.annotations
        return _exception_parts, _failure_parts, current_context, _stream_check, custom_annotations

    @property
    def _pyroHmacKey(self):
        return self.__pyroHmacKey

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value):
        if value and type(value) is not bytes:
            value = value.encode("utf-8")
        self._native.set_hmac_key(value or None)
        self.__pyroHmacKey = value

    @property
    def sock(self):
        """Not available: the listening socket belongs to the Rust daemon."""
        return None

    @property
    def sockets(self):
        return []

    @staticmethod
    def serveSimple(objects, host=None, port=0, daemon=None, ns=True, verbose=True):
        """Register the objects (dict of object -> name or None), optionally in the name
        server too, and run the request loop (Pyro4's ``serveSimple``)."""
        if daemon is None:
            daemon = Daemon(host, port)
        with daemon:
            if ns:
                ns = _locateNS()
            for obj, name in objects.items():
                localname = None if ns else name
                uri = daemon.register(obj, localname)
                if verbose:
                    print(f"Object {obj!r}:\n    uri = {uri}")
                if name and ns:
                    ns.register(name, uri)
                    if verbose:
                        print(f"    name = {name}")
            if verbose:
                print("Pyro daemon running.")
            daemon.requestLoop()

    def requestLoop(self, loopCondition=lambda: True):
        """Serve requests until ``shutdown`` (or ``loopCondition()`` turns false). Calls are
        served by the Rust daemon and its worker threads; this thread checks the loop
        condition, reports client disconnects and runs ``housekeeping``."""
        if not self.transportServer:
            raise errors.PyroError("daemon is closed")
        self.__mustshutdown.clear()
        self.__loopstopped.clear()
        self._native.start()
        poll = 0.1
        housekeeping_every = max(float(config.POLLTIMEOUT or 2.0), 0.1)
        last = time.monotonic()
        try:
            while not self.__mustshutdown.is_set() and loopCondition():
                if self._native.wait(poll):
                    break
                self._reap_connections()
                now = time.monotonic()
                if now - last >= housekeeping_every:
                    last = now
                    self._housekeeping()
        finally:
            self._reap_connections()
            self.__loopstopped.set()

    def events(self, eventsockets):
        raise NotImplementedError("pyro_rs daemons run their own event loop; use requestLoop")

    def combine(self, daemon):
        raise NotImplementedError("pyro_rs daemons cannot be combined; run each requestLoop in a thread")

    def shutdown(self):
        """Stop the request loop and close the daemon."""
        self.streaming_responses = {}
        self.__mustshutdown.set()
        self._native.shutdown()
        self.close()
        if not _in_worker():
            self.__loopstopped.wait(timeout=5)

    @property
    def _shutting_down(self):
        return self.__mustshutdown.is_set()

    def validateHandshake(self, conn, data):
        """Override to check new connections: return the handshake response, or raise to
        refuse the connection (the exception text becomes the client's error)."""
        return "hello"

    def clientDisconnect(self, conn):
        """Override to act on a client disconnect (called with the connection object)."""

    def annotations(self):
        """Override to return annotations (4-char str -> bytes) sent with each response."""
        return {}

    def housekeeping(self):
        """Override for periodic clean-up; called every POLLTIMEOUT by the request loop."""

    def _housekeeping(self):
        if self._shutting_down:
            return
        with self.housekeeper_lock:
            self.housekeeping()

    def _response_annotations(self):
        annotations = dict(current_context.response_annotations or {})
        annotations.update(self.annotations())
        annotations.pop("CORR", None)
        return annotations

    def _connection_for(self, conn_id, addr):
        conn = self._connections.get(conn_id)
        if conn is None:
            conn = self._connections.setdefault(conn_id, _ClientConnection(conn_id, addr))
        return conn

    def _reap_connections(self):
        for conn_id in self._native.dead_connections():
            conn = self._connections.pop(conn_id, None)
            if conn is not None:
                self._clientDisconnect(conn)

    def _clientDisconnect(self, conn):
        for resource in list(conn.tracked_resources):
            try:
                resource.close()
            except Exception:
                log.exception("error cleaning up a tracked resource")
        conn.tracked_resources.clear()
        conn.pyroInstances.clear()
        try:
            self.clientDisconnect(conn)
        except Exception:
            log.exception("error in clientDisconnect")

    def _getInstance(self, clazz, conn):
        def createInstance(clazz, creator):
            try:
                if creator:
                    obj = creator(clazz)
                    if isinstance(obj, clazz):
                        return obj
                    raise TypeError("instance creator returned object of different type")
                return clazz()
            except Exception:
                log.exception("could not create pyro object instance")
                raise
        instance_mode, instance_creator = clazz._pyroInstancing
        if instance_mode == "single":
            with self.create_single_instance_lock:
                instance = self._pyroInstances.get(clazz)
                if not instance:
                    instance = createInstance(clazz, instance_creator)
                    self._pyroInstances[clazz] = instance
                return instance
        if instance_mode == "session":
            instance = conn.pyroInstances.get(clazz)
            if not instance:
                instance = createInstance(clazz, instance_creator)
                conn.pyroInstances[clazz] = instance
            return instance
        if instance_mode == "percall":
            return createInstance(clazz, instance_creator)
        raise errors.DaemonError("invalid instancemode in registered class")

    def register(self, obj_or_class, objectId=None, force=False):
        """Register an object (used for every call) or a class (instances per its
        ``@behavior`` instance mode, default session) under an id; returns its URI."""
        if objectId:
            if not isinstance(objectId, str):
                raise TypeError("objectId must be a string or None")
        else:
            objectId = "obj_" + uuid.uuid4().hex
        if inspect.isclass(obj_or_class) and not hasattr(obj_or_class, "_pyroInstancing"):
            obj_or_class._pyroInstancing = ("session", None)
        if not force:
            if not isinstance(obj_or_class, Proxy) and getattr(obj_or_class, "_pyroId", "") != "":
                raise errors.DaemonError("object or class already has a Pyro id")
            if objectId in self.objectsById:
                raise errors.DaemonError("an object or class is already registered with that id")
        obj_or_class._pyroId = objectId
        obj_or_class._pyroDaemon = self
        self._native_register(objectId, obj_or_class)
        self.objectsById[objectId] = obj_or_class
        return self.uriFor(objectId)

    def _native_register(self, objectId, obj_or_class):
        meta = util.get_exposed_members(obj_or_class, only_exposed=config.REQUIRE_EXPOSE, as_lists=True)
        if not meta["methods"] and not meta["attrs"]:
            log.warning("object %r doesn't expose any methods or attributes", obj_or_class)
        clazz = obj_or_class if inspect.isclass(obj_or_class) else type(obj_or_class)
        known = set(dir(obj_or_class))
        self._native.register(objectId, obj_or_class, clazz.__name__, meta["methods"], meta["oneway"],
                              meta["attrs"], sorted(known), bool(config.REQUIRE_EXPOSE), True,
                              inspect.isclass(obj_or_class))

    def unregister(self, objectOrId):
        """Remove an object or class (by itself or its id)."""
        if objectOrId is None:
            raise ValueError("object or objectid argument expected")
        if not isinstance(objectOrId, str):
            objectId = getattr(objectOrId, "_pyroId", None)
            if objectId is None:
                raise errors.DaemonError("object isn't registered")
        else:
            objectId = objectOrId
            objectOrId = None
        if objectId == constants.DAEMON_NAME:
            return
        if objectId in self.objectsById:
            del self.objectsById[objectId]
            self._native.unregister(objectId)
            if objectOrId is not None:
                del objectOrId._pyroId
                del objectOrId._pyroDaemon

    def uriFor(self, objectOrId, nat=True):
        """The URI for an object (must be registered) or an object id."""
        if not isinstance(objectOrId, str):
            objectOrId = getattr(objectOrId, "_pyroId", None)
            if objectOrId is None or objectOrId not in self.objectsById:
                raise errors.DaemonError("object isn't registered in this daemon")
        loc = (self.natLocationStr or self.locationStr) if nat else self.locationStr
        return URI(f"PYRO:{objectOrId}@{loc}")

    def resetMetadataCache(self, objectOrId, nat=True):
        """Recompute the exposed members of an object whose class changed."""
        uri = self.uriFor(objectOrId, nat)
        if uri.object in self.objectsById:
            registered_object = self.objectsById[uri.object]
            util.reset_exposed_members(registered_object, config.REQUIRE_EXPOSE, as_lists=True)
            util.reset_exposed_members(registered_object, config.REQUIRE_EXPOSE, as_lists=False)
            if uri.object != constants.DAEMON_NAME:
                self._native_register(uri.object, registered_object)

    def proxyFor(self, objectOrId, nat=True):
        """A proxy for a registered object, with its metadata already filled in."""
        uri = self.uriFor(objectOrId, nat)
        proxy = Proxy(uri)
        try:
            registered_object = self.objectsById[uri.object]
        except KeyError:
            raise errors.DaemonError("object isn't registered in this daemon")
        meta = util.get_exposed_members(registered_object, only_exposed=config.REQUIRE_EXPOSE)
        proxy._pyroGetMetadata(known_metadata=meta)
        return proxy

    def close(self):
        """Stop serving and release the socket and worker threads."""
        self.__mustshutdown.set()
        self.streaming_responses = {}
        if self.transportServer:
            self.transportServer = None
            self._native.close(not _in_worker())

    def __repr__(self):
        family = "Unix" if self.locationStr.startswith("./u:") else "IPv4/IPv6"
        return (f"<{self.__class__.__module__}.{self.__class__.__name__} at 0x{id(self):x}; {self.locationStr} - "
                f"{family}; {len(self.objectsById)} objects>")

    def __enter__(self):
        if not self.transportServer:
            raise errors.PyroError("cannot reuse this object")
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def __getstate__(self):
        return {}

    def __getstate_for_dict__(self):
        return ()

    def __setstate_from_dict__(self, state):
        pass


def _autoproxy_hook(serializer):
    """The serializer's replacement hook, returning a proxy for a registered object
    (Pyro4's ``pyroObjectToAutoProxy``) when AUTOPROXY is on."""
    base = serializer.replace

    def replace(obj):
        if config.AUTOPROXY and not isinstance(obj, (Proxy, URI, Daemon)):
            daemon = getattr(obj, "_pyroDaemon", None)
            if isinstance(daemon, Daemon) and getattr(obj, "_pyroId", None):
                return daemon.proxyFor(obj)
        return base(obj)
    return replace


# Registered objects become proxies wherever they are serialized, in replies and in call
# arguments alike (Pyro4 registers the same replacement with every serializer).
for _ser in util._serializers.values():
    _ser.replace = _autoproxy_hook(_ser)
del _ser


def _serialize_core_object_to_dict(obj):
    return {"__class__": "Pyro4.core." + obj.__class__.__name__, "state": obj.__getstate_for_dict__()}


# URI and Proxy cross the wire as Pyro4.core.URI / Pyro4.core.Proxy in every serializer.
for _cls in (URI, Proxy, Daemon):
    util.SerializerBase.register_class_to_dict(_cls, _serialize_core_object_to_dict, serpent_too=True)
util.SerializerBase.register_class_to_dict(futures._ExceptionWrapper,
                                           futures._ExceptionWrapper.__serialized_dict__, serpent_too=True)
del _cls
