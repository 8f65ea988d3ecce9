"""Differential test: the Rust pickle codec against CPython's pickle and Pyro4 4.82.

Hypothesis generates Python values (derandomized, so every run checks the same ones);
CPython pickles them at a protocol from 0 to 5; the Rust example ``pickle_roundtrip``
unpickles those bytes into the value model and pickles the result again at a protocol
from 2 to 5. CPython's unpickler (the C one and the pure-Python one, which also checks
the framing) must then give back an object equal to the value model's view of the
original: what Python pickled, Rust decodes, and what Rust pickles, Python decodes.

The value model's view (``model``): frozenset -> set, bytearray -> bytes,
OrderedDict -> dict, Decimal/UUID/datetime/date/time -> their str/isoformat text,
timedelta -> total_seconds() (as serpent sends them). Pyro4 exceptions, URIs, proxies
and batch wrappers are checked separately: they must come back as real Pyro4 objects.
"""
import collections
import datetime
import decimal
import math
import os
import pathlib
import pickle
import struct
import subprocess
import uuid

import Pyro4.core
import Pyro4.errors
import Pyro4.futures
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = "pickle_roundtrip"


def _binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "pyro-codec", "--example", EXAMPLE],
        cwd=ROOT, check=True,
    )
    path = target / "debug" / "examples" / EXAMPLE
    assert path.exists(), path
    return path


class RustCodec:
    def __init__(self, path):
        self.proc = subprocess.Popen([str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def roundtrip(self, data, protocol):
        """Rust unpickles ``data`` and pickles the value at ``protocol``."""
        self.proc.stdin.write(struct.pack(">BI", protocol, len(data)) + data)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(5)
        assert len(head) == 5, "roundtrip helper died"
        status, n = struct.unpack(">BI", head)
        body = self.proc.stdout.read(n)
        if status != 0:
            raise ValueError(body.decode("utf-8", "replace"))
        return body

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def rust():
    codec = RustCodec(_binary())
    yield codec
    codec.close()


def loads_both(data):
    """CPython's C unpickler and the pure-Python one (strict about FRAME lengths) agree."""
    a = pickle.loads(data)
    b = pickle._loads(data)
    # Objects (exceptions, URIs, proxies) compare by identity; compare their pickles.
    assert same(a, b) or pickle.dumps(a, 4) == pickle.dumps(b, 4), (a, b)
    return a


# ----------------------------------------------------------------------------------------
# Value strategies

def _big(n, seed, neg):
    """An n-digit int (1 <= n <= 4300, the digit limit of the value model's decoders)."""
    digits = (str(seed) * (n // max(len(str(seed)), 1) + 1))[:n].lstrip("0") or "0"
    return -int(digits) if neg else int(digits)


big_ints = st.builds(_big, st.integers(1, 4300), st.integers(1, 2 ** 64), st.booleans())
ints = st.one_of(st.integers(), st.integers(min_value=-2 ** 70, max_value=2 ** 70), big_ints)
floats = st.floats(allow_nan=True, allow_infinity=True)
texts = st.one_of(st.text(st.characters(codec="utf-8"), max_size=30),
                  st.text(max_size=300, alphabet="ab\u20ac\n\\ \x00"))  # no lone surrogates
offsets = st.timedeltas(min_value=-datetime.timedelta(hours=23, minutes=59),
                        max_value=datetime.timedelta(hours=23, minutes=59))
timezones = st.one_of(st.none(), st.just(datetime.timezone.utc), st.builds(datetime.timezone, offsets))
hashable_scalars = st.one_of(
    st.booleans(), ints, st.floats(allow_nan=False), texts, st.binary(max_size=20),
    st.complex_numbers(allow_nan=False),
)
hashables = st.recursive(
    hashable_scalars, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=6)
scalars = st.one_of(
    st.none(), st.booleans(), ints, floats, texts, st.binary(max_size=300),
    st.binary(max_size=40).map(bytearray),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.decimals(), st.uuids(),
    st.datetimes(timezones=timezones), st.dates(), st.times(timezones=timezones),
    # total_seconds() is exact below 2**53 microseconds (about 285 years).
    st.timedeltas(min_value=-datetime.timedelta(days=100000),
                  max_value=datetime.timedelta(days=100000)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashables, inner, max_size=5),
        st.dictionaries(st.text(max_size=3), inner, max_size=4).map(collections.OrderedDict),
        st.sets(hashables, max_size=6),
        st.frozensets(st.integers(min_value=-300, max_value=300), max_size=8),
    ),
    max_leaves=25,
)


def model(v):
    """The value model's view of a Python value (see the module docstring)."""
    t = type(v)
    if t in (datetime.datetime, datetime.date, datetime.time):
        return v.isoformat()
    if t is datetime.timedelta:
        return v.total_seconds()
    if t in (decimal.Decimal, uuid.UUID):
        return str(v)
    if t is bytearray:
        return bytes(v)
    if t in (set, frozenset):
        return {model(x) for x in v}
    if t is tuple:
        return tuple(model(x) for x in v)
    if t is list:
        return [model(x) for x in v]
    if t in (dict, collections.OrderedDict):
        return {model(k): model(x) for k, x in v.items()}
    return v


def same(a, b):
    """Python equality, except NaN equals NaN, types must match and dicts keep order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(k1, k2) and same(v1, v2) for (k1, v1), (k2, v2) in zip(a.items(), b.items()))
    return a == b


SETTINGS = settings(
    max_examples=600, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(values, st.integers(0, 5), st.integers(2, 5))
def test_python_pickles_rust_repickles_python_loads(rust, value, p_in, p_out):
    data = pickle.dumps(value, p_in)
    out = rust.roundtrip(data, p_out)
    assert out[:2] == bytes([0x80, p_out])
    back = loads_both(out)
    assert same(back, model(value)), (value, data, out, back)


def test_fixed_values(rust):
    shared = [1, "x"]
    for value in [
        None, 2 ** 100, -(10 ** 4299), float("nan"), -0.0, "", "é" * 33000, b"\xfe" * 70000,
        b"", bytearray(), set(), frozenset(), (), ((),), [shared, shared], list(range(2500)),
        {f"k{i}": i for i in range(1500)}, set(range(1200)), 1 - 2j,
        datetime.datetime(2021, 11, 7, 1, 30, fold=1), datetime.date(1, 1, 1),
        datetime.time(23, 59, 59, 999999, tzinfo=datetime.timezone(datetime.timedelta(seconds=-1))),
    ]:
        for p_in in range(6):
            for p_out in range(2, 6):
                back = loads_both(rust.roundtrip(pickle.dumps(value, p_in), p_out))
                assert same(back, model(value)), (value, p_in, p_out)


# ----------------------------------------------------------------------------------------
# Pyro4 objects: Python's unpickler must rebuild real instances from what Rust writes.

def exc(cls, *args, tb=True, **attrs):
    e = cls(*args)
    if tb:
        e._pyroTraceback = ["Traceback (most recent call last):\n", f"{cls.__name__}: x\n"]
    for k, x in attrs.items():
        setattr(e, k, x)
    return e


def proxy(uri, methods=(), oneway=(), attrs=(), hmac=None, handshake=None, serializer=None):
    p = Pyro4.core.Proxy(uri)
    p._pyroMethods = set(methods)
    p._pyroOneway = set(oneway)
    p._pyroAttrs = set(attrs)
    p._pyroHmacKey = hmac
    p._pyroHandshake = handshake
    p._pyroSerializer = serializer
    return p


EXCEPTIONS = [
    exc(ValueError, "bad value", 3), exc(KeyError, "k", extra={"a": [1]}), exc(StopIteration, tb=False),
    exc(UnicodeDecodeError, "utf-8", b"\xff", 0, 1, "invalid start byte"),
    exc(ConnectionRefusedError, 111, "refused"), exc(ZeroDivisionError, "division by zero"),
    exc(Pyro4.errors.NamingError, "unknown name: x"), exc(Pyro4.errors.CommunicationError, "gone"),
    exc(Pyro4.errors.DaemonError, "unknown object"), exc(Pyro4.errors.SecurityError, "no"),
    exc(Pyro4.errors.ConnectionClosedError, "closed", tb=False),
    exc(Pyro4.errors.TimeoutError, "slow"), exc(Pyro4.errors.SerializeError, "cannot"),
]


def same_exception(a, b):
    return type(a) is type(b) and same(a.args, b.args) and vars(a) == vars(b)


@pytest.mark.parametrize("p_in", range(6))
@pytest.mark.parametrize("p_out", range(2, 6))
def test_exceptions_come_back_with_their_class(rust, p_in, p_out):
    for e in EXCEPTIONS:
        data = pickle.dumps(e, p_in)
        expected = pickle.loads(data)  # protocol < 3 may map a class to its Py2 ancestor
        back = loads_both(rust.roundtrip(data, p_out))
        assert same_exception(back, expected), (e, back, vars(back))
        if p_in >= 3:
            assert same_exception(back, e)


URIS = ["PYRO:obj@localhost:9999", "PYRONAME:foo.bar", "PYRONAME:foo@ns.host:9091",
        "PYRO:obj@./u:/tmp/pyro.sock", "PYRO:obj@[::1]:5555"]


@pytest.mark.parametrize("p_in", range(6))
@pytest.mark.parametrize("p_out", range(2, 6))
def test_uris_proxies_and_wrappers_are_usable_objects(rust, p_in, p_out):
    for text in URIS:
        back = loads_both(rust.roundtrip(pickle.dumps(Pyro4.core.URI(text), p_in), p_out))
        assert type(back) is Pyro4.core.URI and str(back) == text
        assert back == Pyro4.core.URI(text)
    for p in [
        proxy("PYRO:thing@127.0.0.1:5555"),
        proxy("PYRO:thing1@127.0.0.1:5555", methods=["hi", "ho"], oneway=["hi"], attrs=["prop"],
              hmac=b"secret\x00key", handshake={"user": "x"}, serializer="pickle"),
        proxy("PYRONAME:some.name", handshake="hello"),
    ]:
        back = loads_both(rust.roundtrip(pickle.dumps(p, p_in), p_out))
        assert type(back) is Pyro4.core.Proxy
        assert back._pyroUri == p._pyroUri
        assert back._pyroMethods == p._pyroMethods and isinstance(back._pyroMethods, set)
        assert back._pyroOneway == p._pyroOneway and back._pyroAttrs == p._pyroAttrs
        assert back._pyroHmacKey == p._pyroHmacKey
        assert back._pyroHandshake == p._pyroHandshake
        assert back._pyroSerializer == p._pyroSerializer
    batch = [1, "two", Pyro4.futures._ExceptionWrapper(exc(ValueError, "batch failure"))]
    back = loads_both(rust.roundtrip(pickle.dumps(batch, p_in), p_out))
    assert back[:2] == [1, "two"] and type(back[2]) is Pyro4.futures._ExceptionWrapper
    assert same_exception(back[2].exception, batch[2].exception)
    # A call payload as a Pyro4 client pickles it (Pyro4.util.PickleSerializer.dumpsCall).
    call = ("obj", "method", (1, Pyro4.core.URI("PYRO:x@h:1")), {"kw": b"\x00"})
    back = loads_both(rust.roundtrip(pickle.dumps(call, p_in), p_out))
    assert back == call


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class EvilEval:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_rust_refuses_to_call_unknown_globals(rust):
    for obj in (Evil(), EvilEval(), [1, {"x": Evil()}]):
        for p in range(6):
            with pytest.raises(ValueError, match="refusing to call"):
                rust.roundtrip(pickle.dumps(obj, p), 2)


def test_rust_refuses_what_python_cannot_load(rust):
    data = pickle.dumps([1, 2, 3], 5)
    for n in range(len(data)):
        with pytest.raises(ValueError):
            rust.roundtrip(data[:n], 2)
    with pytest.raises(ValueError, match="out-of-band"):
        rust.roundtrip(pickle.dumps(pickle.PickleBuffer(b"abc"), 5, buffer_callback=lambda b: False), 2)
