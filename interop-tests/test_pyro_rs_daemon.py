"""The pyro_rs Daemon (Rust runtime, Python objects) against real Pyro4 4.82 clients and
pyro_rs clients, in serpent, json and marshal; the scenarios of Pyro4's examples.

The daemon under test runs in this process (its request loop in a thread, calls on its
worker pool); Pyro4 clients are the real library, in this process or in the real Pyro4
server process of ``conftest.py`` (which calls back into a pyro_rs daemon).
"""

import base64
import datetime
import decimal
import math
import os
import socket
import threading
import time
import uuid

import Pyro4
import Pyro4.errors
import Pyro4.futures
import Pyro4.util
import pyro_rs
import pyro_rs.errors
import pyro_rs.serpent
import pyro_rs.util
import pytest

SERIALIZERS = ["serpent", "json", "marshal"]
CLIENTS = {"Pyro4": Pyro4, "pyro_rs": pyro_rs}


class Unregistered:
    def __init__(self):
        self.x = 1


@pyro_rs.expose
class Thing:
    def __init__(self):
        self._value = 42
        self.last = None
        self.oneway_calls = 0

    def echo(self, *args, **kwargs):
        if kwargs:
            return [list(args), kwargs]
        return args[0] if len(args) == 1 else list(args)

    def describe(self, *args, **kwargs):
        return repr((args, kwargs))

    def fail(self, kind="value"):
        if kind == "value":
            raise ValueError("bad value", 3)
        if kind == "naming":
            raise pyro_rs.errors.NamingError("no such name")
        if kind == "zero":
            return 1 // 0
        raise KeyError(kind)

    def slow(self, seconds):
        time.sleep(seconds)
        return seconds

    @pyro_rs.oneway
    def set_later(self, value):
        time.sleep(0.2)
        self.last = value

    def get_last(self):
        return self.last

    def generator(self, n):
        for i in range(n):
            yield i * 10

    def failing_generator(self):
        yield 1
        raise ValueError("stream broke")

    def iterator(self):
        return iter(["a", "b"])

    def context(self):
        ctx = pyro_rs.current_context
        ctx.response_annotations["XRSP"] = b"response"
        return {
            "seq": ctx.seq,
            "addr": list(ctx.client_sock_addr),
            "corr": str(ctx.correlation_id),
            "annotations": {k: bytes(v) for k, v in ctx.annotations.items() if k != "CORR"},
            "has_client": ctx.client is not None,
        }

    def make_child(self, name):
        child = Child(name)
        self._pyroDaemon.register(child)
        return child

    def unknown(self):
        return Unregistered()

    def threadname(self):
        return threading.current_thread().ident

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        self._value = v

    def _private(self):
        return "never"


class Hidden:
    """Not exposed at all (REQUIRE_EXPOSE is on)."""

    def secret(self):
        return "no"

    @pyro_rs.expose
    def open(self):
        return "yes"


@pyro_rs.expose
class Child:
    def __init__(self, name):
        self.name = name

    def hello(self):
        return f"child {self.name}"


def _counter_class(mode):
    @pyro_rs.behavior(instance_mode=mode)
    @pyro_rs.expose
    class Counter:
        created = 0

        def __init__(self):
            type(self).created += 1
            self.count = 0

        def incr(self):
            self.count += 1
            return self.count

        def ident(self):
            return id(self)
    Counter.__name__ = "Counter_" + mode
    return Counter


class CheckingDaemon(pyro_rs.Daemon):
    """Handshake validation and daemon annotations (Pyro4's handshake example)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.disconnects = []

    def validateHandshake(self, conn, data):
        if data == "let me in":
            conn.greeted = True
            return "welcome"
        if data == "hello":
            return "hi there"
        raise ValueError(f"handshake refused: {data!r}")

    def annotations(self):
        return {"XTRA": b"from-daemon"}

    def clientDisconnect(self, conn):
        self.disconnects.append(conn)


@pytest.fixture(scope="module")
def served():
    """A pyro_rs daemon on 127.0.0.1:0 serving the test objects: {name: uri text}."""
    daemon = CheckingDaemon(host="127.0.0.1", port=0)
    uris = {
        "thing": str(daemon.register(Thing(), "thing")),
        "hidden": str(daemon.register(Hidden(), "hidden")),
    }
    for mode in ("single", "session", "percall"):
        cls = _counter_class(mode)
        uris[mode] = str(daemon.register(cls, "counter." + mode))
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    uris["_daemon"] = daemon
    yield uris
    daemon.shutdown()
    thread.join(timeout=10)
    assert not thread.is_alive()


def skip_pyro4_marshal_bug(lib, ser):
    """Pyro4 4.82's own marshal serializer fails on calls it sends with kwargs None
    (``__getattr__``/``__setattr__``, batches): nothing a daemon can answer."""
    if lib is Pyro4 and ser == "marshal":
        pytest.skip("Pyro4 4.82's marshal serializer cannot send calls with kwargs None")


def make_proxy(lib, uri, serializer):
    p = CLIENTS[lib].Proxy(uri)
    p._pyroSerializer = serializer
    p._pyroHandshake = "hello"
    p._pyroTimeout = 10
    return p


@pytest.fixture(params=[(c, s) for c in CLIENTS for s in SERIALIZERS], ids=lambda p: f"{p[0]}-{p[1]}")
def thing(request, served):
    lib, ser = request.param
    p = make_proxy(lib, served["thing"], ser)
    yield CLIENTS[lib], ser, p
    p._pyroRelease()


def test_plain_calls(thing):
    _lib, ser, p = thing
    assert p.echo("hi") == "hi"
    assert p.echo(1, 2.5, None, True) == [1, 2.5, None, True]
    assert p.echo(1, key="v") == [[1], {"key": "v"}]
    expected = (1, 2) if ser in ("serpent", "marshal") else [1, 2]
    assert p.echo({"t": (1, 2)}) == {"t": expected}
    assert p.echo(b"\x00\xff" if ser == "marshal" else "x") in (b"\x00\xff", "x")
    assert sorted(p._pyroMethods) == sorted(["echo", "describe", "fail", "slow", "set_later", "get_last", "generator",
                                               "failing_generator", "iterator", "context", "make_child",
                                               "unknown", "threadname"])
    assert p._pyroAttrs == {"value"}
    assert p._pyroOneway == {"set_later"}


def test_large_payloads_in_a_row(thing, monkeypatch):
    """Large and small payloads one after another on one connection (the daemon keeps its
    read and reply buffers between messages), plain and zlib-compressed by the client."""
    lib, ser, p = thing
    for compress in (False, True):
        monkeypatch.setattr(lib.config, "COMPRESSION", compress)
        # 48,000 and 50,000 bytes: serpent text just under and over 64 KiB, from where the
        # daemon reuses one reply buffer per connection for the results it writes itself
        # (a smaller result after a larger one must not carry the old one's tail).
        for size in (300_000, 5, 1_200_000, 20_000, 0, 70_000, 48_000, 50_000, 1_000_000, 200_000):
            if ser == "json":
                value = "".join(chr(97 + i % 26) for i in range(size))
            else:
                value = bytes(i % 251 for i in range(size))
            result = p.echo(value)
            if isinstance(result, dict):  # serpent's form of bytes, for Pyro4 clients
                result = base64.b64decode(result["data"])
            assert result == value, (compress, size)


def test_results_equal_a_pyro4_daemons(served, pyro4_server):
    """A Pyro4 client gets the same results from the pyro_rs daemon as from a Pyro4 daemon
    (serpent: builtin results are written by the daemon without the value tree, others
    take the value path)."""
    values = [
        list(range(10_000)), {"k": [1, (2, 3)], 7: {"n": None}}, {1, 2}, (), [float("inf"), -0.0],
        "x" * 130_000, [2 ** 64, -2 ** 70], 3 - 4j, {(1, 2): frozenset({3})},
        uuid.UUID(int=7), [b"\x00" * 10, bytearray(b"ab")], "h\xe9llo \U0001F600",
    ]
    ours = Pyro4.Proxy(served["thing"])
    ours._pyroHandshake = "hello"
    theirs = Pyro4.Proxy(pyro4_server)
    with ours, theirs:
        for v in values:
            assert ours.echo(v) == theirs.echo(v), v
        assert math.isnan(ours.echo(float("nan")))


def test_arguments_equal_a_pyro4_daemons(served, pyro4_server):
    """The method receives the same Python arguments in the pyro_rs daemon as in a Pyro4
    daemon, for a Pyro4 client (serpent: a plain call's arguments are parsed straight into
    Python objects, class dicts go through Pyro4's recreate_classes walk)."""
    calls = [
        ((), {}),
        ((1, "two", 3.5, None, True, -2 ** 70, 3 - 4j), {}),
        ((float("nan"), float("-inf"), -0.0), {"nan": float("nan")}),
        (([1, (2, [3, {4, 5}])], {"k": (), 7: {"n": frozenset({1})}}), {}),
        ((ValueError("bad", 3), [KeyError("k"), {"e": ZeroDivisionError("z")}]), {}),
        ((), {"err": IndexError("i"), "nested": {"e": [ValueError("v")]}}),
        ((b"\x00\xffbytes", bytearray(b"ba")), {"b": b"kw"}),
        (("h\xe9llo \U0001F600", "it's", 'say "hi"', "back\\slash\n"), {}),
        ((list(range(3000)), "x" * 100_000), {}),
        ((uuid.UUID(int=7), decimal.Decimal("1.25"), datetime.date(2020, 2, 29)), {}),
        (({"__class__": "not.a.Class", "x": 1},), {}),
        ((), {"__class__": "builtins.ValueError", "args": ("in kwargs",)}),
    ]
    ours = Pyro4.Proxy(served["thing"])
    ours._pyroHandshake = "hello"
    theirs = Pyro4.Proxy(pyro4_server)
    with ours, theirs:
        for args, kwargs in calls:
            outcomes = []
            for p in (ours, theirs):
                try:
                    outcomes.append(p.describe(*args, **kwargs))
                except Exception as e:  # noqa: BLE001 - both daemons must fail alike
                    outcomes.append(f"{type(e).__name__}: {e}")
            assert outcomes[0] == outcomes[1], (args, kwargs)


def test_exceptions_with_remote_traceback(thing):
    lib, _ser, p = thing
    with pytest.raises(ValueError) as exc:
        p.fail()
    assert exc.value.args == ("bad value", 3)
    tb = "".join(exc.value._pyroTraceback)
    assert tb.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("bad value", 3)' in tb
    assert tb.endswith("ValueError: ('bad value', 3)\n")
    text = "".join(lib.util.getPyroTraceback(type(exc.value), exc.value, exc.value.__traceback__))
    assert "Remote traceback:" in text and "bad value" in text
    with pytest.raises(ZeroDivisionError):
        p.fail("zero")
    with pytest.raises(lib.errors.NamingError, match="no such name"):
        p.fail("naming")
    with pytest.raises(KeyError):
        p.fail("other")
    # A wrong call is Python's own TypeError, raised remotely.
    with pytest.raises(TypeError, match="argument"):
        p.slow()


def test_attributes(thing):
    lib, ser, p = thing
    skip_pyro4_marshal_bug(lib, ser)
    p.value = 7
    assert p.value == 7
    p.value = 42
    with pytest.raises(AttributeError):
        p.nonexisting = 1


def test_exposure_rules(served):
    for lib in CLIENTS.values():
        with lib.Proxy(served["thing"]) as p:
            p._pyroHandshake = "hello"
            with pytest.raises(AttributeError, match="private"):
                p._pyroInvoke("_private", (), {})
            with pytest.raises(AttributeError, match="has no attribute 'nope'"):
                p._pyroInvoke("nope", (), {})
            with pytest.raises(AttributeError, match="private"):
                p._pyroInvoke("__init__", (), {})
        with lib.Proxy(served["hidden"]) as p:
            p._pyroHandshake = "hello"
            assert p._pyroMethods == set() or p._pyroMethods == {"open"}
            assert p.open() == "yes"
            with pytest.raises(AttributeError, match="unexposed attribute 'secret'"):
                p._pyroInvoke("secret", (), {})


def test_streaming(thing):
    _lib, _ser, p = thing
    assert list(p.generator(5)) == [0, 10, 20, 30, 40]
    assert list(p.iterator()) == ["a", "b"]
    it = p.failing_generator()
    assert next(it) == 1
    with pytest.raises(ValueError, match="stream broke"):
        next(it)


def test_oneway(thing):
    _lib, ser, p = thing
    marker = f"{ser}-{uuid.uuid4()}"
    start = time.monotonic()
    assert p.set_later(marker) is None
    assert time.monotonic() - start < 0.15
    deadline = time.monotonic() + 5
    while p.get_last() != marker:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_batch(thing):
    lib, ser, p = thing
    skip_pyro4_marshal_bug(lib, ser)
    batch = lib.batch(p)
    batch.echo(1)
    batch.echo("two")
    batch.fail()
    batch.echo("never")
    results = batch()
    assert next(results) == 1
    assert next(results) == "two"
    with pytest.raises(ValueError, match="bad value"):
        next(results)


def test_async(thing):
    lib, _ser, p = thing
    with p.__copy__() as ap:
        lib.asyncproxy(ap)
        result = ap.slow(0.2)
        assert not result.ready
        assert result.wait(5)
        assert result.value == 0.2


def test_timeout(thing):
    lib, _ser, p = thing
    p._pyroTimeout = 0.3
    with pytest.raises(lib.errors.TimeoutError):
        p.slow(1.5)


def test_call_context_and_annotations(served):
    for libname, lib in CLIENTS.items():
        seen = {}

        class AnnotatingProxy(lib.Proxy):
            def _pyroAnnotations(self):
                return {"XCLT": b"from-client"}

            def _pyroResponseAnnotations(self, annotations, msgtype, seen=seen):
                seen.update(annotations)

        with AnnotatingProxy(served["thing"]) as p:
            p._pyroHandshake = "hello"
            corr = uuid.uuid4()
            lib.current_context.correlation_id = corr
            try:
                ctx = p.context()
            finally:
                lib.current_context.correlation_id = None
            assert ctx["corr"] == str(corr), libname
            # serpent sends bytes as a base64 dict, for Pyro4 and pyro_rs clients alike.
            annotations = {k: pyro_rs.serpent.tobytes(v) for k, v in ctx["annotations"].items()}
            assert annotations == {"XCLT": b"from-client"}
            assert ctx["addr"][0] == "127.0.0.1"
            assert ctx["has_client"]
            assert seen["XRSP"] == b"response"
            assert seen["XTRA"] == b"from-daemon"
            assert uuid.UUID(bytes=bytes(seen["CORR"])) == corr


def test_handshake_validation(served):
    for lib in CLIENTS.values():
        responses = []

        class Validating(lib.Proxy):
            def _pyroValidateHandshake(self, response, responses=responses):
                responses.append(response)

        with Validating(served["thing"]) as p:
            p._pyroHandshake = "let me in"
            assert p.echo(1) == 1
        assert responses == ["welcome"]
        with lib.Proxy(served["thing"]) as p:
            p._pyroHandshake = "wrong"
            with pytest.raises(lib.errors.CommunicationError, match="handshake refused: 'wrong'"):
                p._pyroBind()


def test_instance_modes(served):
    for lib in CLIENTS.values():
        with lib.Proxy(served["single"]) as a, lib.Proxy(served["single"]) as b:
            assert a.ident() == b.ident()
        with lib.Proxy(served["session"]) as a, lib.Proxy(served["session"]) as b:
            assert a.incr() == 1
            assert a.incr() == 2
            assert b.incr() == 1
            assert a.ident() != b.ident()
        with lib.Proxy(served["percall"]) as a:
            assert a.incr() == 1
            assert a.incr() == 1


def test_client_disconnect_hook(served):
    daemon = served["_daemon"]
    before = len(daemon.disconnects)
    with pyro_rs.Proxy(served["session"]) as p:
        p.incr()
    deadline = time.monotonic() + 5
    while len(daemon.disconnects) == before:
        assert time.monotonic() < deadline, "clientDisconnect was not called"
        time.sleep(0.05)
    assert daemon.disconnects[-1].pyroInstances == {}


def test_client_disconnect_after_direct_calls(served):
    """Calls of an exposed instance method (run without Python's dispatch) must not keep
    the connection alive after the client goes: clientDisconnect still comes."""
    daemon = served["_daemon"]
    for lib in CLIENTS.values():
        before = len(daemon.disconnects)
        with lib.Proxy(served["thing"]) as p:
            assert p.context()["has_client"]
        deadline = time.monotonic() + 5
        while len(daemon.disconnects) == before:
            assert time.monotonic() < deadline, "clientDisconnect was not called"
            time.sleep(0.05)


def test_batch_calls_share_the_request_context(served):
    """As in Pyro4, a batch is one request: its calls see the same seq and correlation id,
    and the same client connection."""
    for libname, lib in CLIENTS.items():
        with lib.Proxy(served["thing"]) as p:
            b = lib.batch(p)
            for _ in range(3):
                b.context()
            results = list(b())
            assert len(results) == 3, libname
            assert len({r["seq"] for r in results}) == 1, libname
            assert len({r["corr"] for r in results}) == 1, libname
            after = p.context()
            assert after["seq"] != results[0]["seq"], libname
            assert after["corr"] != results[0]["corr"], libname


def test_autoproxy(thing):
    lib, _ser, p = thing
    child = p.make_child("c1")
    assert isinstance(child, lib.Proxy)
    assert child.hello() == "child c1"
    child._pyroRelease()


def test_unregistered_class(thing):
    """As from a Pyro4 daemon: serpent names the class (the client refuses it); json and
    marshal send what ``__getstate__`` gives, a plain dict."""
    lib, ser, p = thing
    if ser == "serpent":
        with pytest.raises(lib.errors.SerializeError, match="unsupported serialized class"):
            p.unknown()
    else:
        assert p.unknown() == {"x": 1}


def test_slow_call_does_not_block_other_threads(served):
    """A call in flight releases the GIL: the caller's process keeps running, and calls
    from several connections run at the same time on the worker pool."""
    results = []

    def call():
        with pyro_rs.Proxy(served["thing"]) as p:
            p._pyroHandshake = "hello"
            results.append(p.slow(0.6))

    threads = [threading.Thread(target=call) for _ in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    assert results == [0.6, 0.6, 0.6]
    assert elapsed < 1.5, "calls were serialized"
    assert ticks > 20, "the main thread was starved"


def test_callbacks_from_a_real_pyro4_process(pyro4_server):
    """Pyro4's callback example: a pyro_rs client hands its own (pyro_rs daemon) object to
    a real Pyro4 server process, which calls it back."""
    received = []

    class Receiver:
        @pyro_rs.expose
        @pyro_rs.callback
        def receive(self, value):
            received.append(value)
            if value == "boom":
                raise ValueError("callback failed")
            return f"got {value}"

    with pyro_rs.Daemon(host="127.0.0.1") as daemon:
        receiver = Receiver()
        daemon.register(receiver)
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        with pyro_rs.Proxy(pyro4_server) as server:
            server._pyroHandshake = "hello"
            # The registered object itself is sent: autoproxy turns it into a proxy.
            assert server.call_back(receiver, "ping") == "got ping"
            with pytest.raises(ValueError, match="callback failed"):
                server.call_back(receiver, "boom")
        daemon.shutdown()
        thread.join(timeout=10)
    assert received == ["ping", "boom"]


def test_unix_socket(tmp_path):
    path = str(tmp_path / "pyro.sock")
    with pyro_rs.Daemon(unixsocket=path) as daemon:
        uri = daemon.register(Thing(), "thing")
        assert str(uri) == f"PYRO:thing@./u:{path}"
        assert daemon.locationStr == "./u:" + path
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        for lib in CLIENTS.values():
            with lib.Proxy(str(uri)) as p:
                assert p.echo("unix") == "unix"
        daemon.shutdown()
        thread.join(timeout=10)
    assert not os.path.exists(path)


def test_daemon_api():
    with pyro_rs.Daemon(host="127.0.0.1", port=0, nathost="example.invalid", natport=0) as daemon:
        host, port = daemon.locationStr.split(":")
        assert host == "127.0.0.1"
        assert daemon.natLocationStr == f"example.invalid:{port}"
        thing = Thing()
        uri = daemon.register(thing)
        assert uri.object.startswith("obj_")
        assert uri.host == "example.invalid"
        assert daemon.uriFor(thing, nat=False).host == "127.0.0.1"
        with pytest.raises(pyro_rs.errors.DaemonError, match="already has a Pyro id"):
            daemon.register(thing)
        assert daemon.register(thing, "again", force=True).object == "again"
        with pytest.raises(pyro_rs.errors.DaemonError, match="already registered"):
            daemon.register(Thing(), "again")
        assert set(daemon.objectsById) == {"Pyro.Daemon", uri.object, "again"}
        proxy = daemon.proxyFor("again")
        assert "echo" in proxy._pyroMethods
        daemon.unregister("again")
        assert "again" not in daemon.objectsById
        with pytest.raises(pyro_rs.errors.DaemonError):
            daemon.uriFor(Thing())
    with pytest.raises(pyro_rs.errors.PyroError, match="cannot reuse"):
        daemon.__enter__()
    with pytest.raises(ValueError, match="must provide natport with nathost"):
        pyro_rs.Daemon(natport=5)
    with pytest.raises(ValueError, match="nathost together with unixsocket"):
        pyro_rs.Daemon(unixsocket="x", nathost="h", natport=1)


def test_hmac_key(served):
    daemon = pyro_rs.Daemon(host="127.0.0.1")
    daemon._pyroHmacKey = "s3cret"
    uri = str(daemon.register(Thing(), "thing"))
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    try:
        for lib in CLIENTS.values():
            with lib.Proxy(uri) as p:
                p._pyroHmacKey = b"s3cret"
                assert p.echo(5) == 5
                big = "x" * 200_000
                assert p.echo(big) == big
                assert p.echo(5) == 5
            with lib.Proxy(uri) as p:
                p._pyroHmacKey = b"wrong"
                with pytest.raises(lib.errors.CommunicationError):
                    p.echo(5)
            with lib.Proxy(uri) as p, pytest.raises(lib.errors.CommunicationError):
                p.echo(5)
    finally:
        daemon.shutdown()
        thread.join(timeout=10)


def test_bad_input_does_not_hurt_the_daemon(served):
    host, port = pyro_rs.URI(served["thing"]).host, pyro_rs.URI(served["thing"]).port
    for junk in (b"", b"garbage" * 10, b"PYRO" + b"\xff" * 40, b"PYRO\x00\x30\x00\x04" + b"\x00" * 16):
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    for lib in CLIENTS.values():
        with lib.Proxy(served["thing"]) as p:
            p._pyroHandshake = "hello"
            assert p.echo("still here") == "still here"
        with lib.Proxy(served["thing"].replace("thing@", "missing@")) as p:
            p._pyroHandshake = "hello"
            with pytest.raises(lib.errors.CommunicationError, match="unknown object"):
                p._pyroBind()


def test_multiplex_and_pool_size(monkeypatch):
    """SERVERTYPE multiplex runs every call on one worker thread."""
    monkeypatch.setattr(pyro_rs.config, "SERVERTYPE", "multiplex")
    with pyro_rs.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Thing())
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        with pyro_rs.Proxy(uri) as a, pyro_rs.Proxy(uri) as b:
            assert a.threadname() == b.threadname()
        daemon.shutdown()
        thread.join(timeout=10)
    monkeypatch.setattr(pyro_rs.config, "SERVERTYPE", "bogus")
    with pytest.raises(pyro_rs.errors.PyroError, match="invalid server type"):
        pyro_rs.Daemon()


@pyro_rs.expose
class Napper:
    def __init__(self):
        self.lock = threading.Lock()
        self.naps = 0
        self.ticks = 0

    @pyro_rs.oneway
    def nap(self, seconds):
        time.sleep(seconds)
        with self.lock:
            self.naps += 1

    @pyro_rs.oneway
    def tick(self):
        with self.lock:
            self.ticks += 1

    def counts(self):
        with self.lock:
            return self.naps, self.ticks


def pool_workers():
    """Names of this process's daemon worker threads (Linux: /proc/self/task)."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass  # the thread ended meanwhile
    return [n for n in names if n.startswith("Pyro-Worker")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc (Linux)")
def test_oneway_calls_in_the_worker_pool():
    """ONEWAY_THREADED (thread server): oneway calls that block run side by side, as
    Pyro4 runs each in a thread of its own; a stream of quick ones is left to the worker
    already running instead of starting a worker per call."""
    napper = Napper()
    before = len(pool_workers())
    with pyro_rs.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(napper)
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        with pyro_rs.Proxy(uri) as p:
            start = time.monotonic()
            for _ in range(4):
                p.nap(0.5)
            while p.counts()[0] < 4:
                assert time.monotonic() - start < 10
                time.sleep(0.02)
            # One after another they would take 2 s.
            assert time.monotonic() - start < 1.5
            for _ in range(5000):
                p.tick()
            while p.counts()[1] < 5000:
                assert time.monotonic() - start < 30
                time.sleep(0.02)
        started = len(pool_workers()) - before
        assert 4 <= started <= 8, started
        daemon.shutdown()
        thread.join(timeout=10)


def test_request_loop_condition():
    stop = threading.Event()
    with pyro_rs.Daemon(host="127.0.0.1") as daemon:
        thread = threading.Thread(target=daemon.requestLoop, args=(lambda: not stop.is_set(),), daemon=True)
        thread.start()
        time.sleep(0.2)
        assert thread.is_alive()
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive()
