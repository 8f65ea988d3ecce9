#!/usr/bin/env python3
"""Golden vectors for pyro-codec's pickle codec, written by CPython's own pickler.

Run with the project venv (CPython 3.11, Pyro4 4.82):

    .venv/bin/python scripts/golden/gen_pickle.py

Writes rust-core/pyro-codec/tests/data/pickle/: one ``<name>.bin`` per pickle and a
``cases.txt`` manifest (``|``-separated: name, kind, description), in the value notation
of scripts/golden/gen_codecs.py (parsed by tests/json_desc/mod.rs).

Kinds:
- ``dec``: every value type Pyro sends, pickled at protocols 0 to 5 with
  ``pickle.dumps``; the description is what the Rust unpickler must produce: the value
  model mapping of what *Python* gets back from ``pickle.loads`` of the same bytes
  (datetime/date/time -> isoformat str, timedelta -> total_seconds, Decimal and UUID ->
  str, OrderedDict -> dict, bytearray -> bytes, frozenset -> set, exceptions, URIs,
  proxies and other objects -> the class dicts of pyro_codec::envelope).
- ``trunc``: strict prefixes of some of those pickles (fields: the ``dec`` case whose
  bytes are cut, the prefix length, what ``pickle.loads`` makes of the prefix: ``ERR``
  when it raises, which is nearly always). No ``.bin`` of their own.

Pyro4 itself pickles with ``pickle.dumps(obj, config.PICKLE_PROTOCOL_VERSION)`` (5 here).
"""
import collections
import datetime
import decimal
import os
import pickle
import sys
import uuid

# Set iteration order (and with it the order of pickled set items) depends on the hash
# seed; pin it so that the vectors are reproducible.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.futures
from gen_codecs import CONTAINERS, DATA, SCALARS, Writer, describe

assert sys.version_info[:2] == (3, 11)
assert Pyro4.__version__ == "4.82"


class Thing:
    """A plain object: NEWOBJ + BUILD with its __dict__."""

    def __init__(self):
        self.x = 1
        self.name = "thing"
        self.items = [1, (2, 3)]


class Slotted:
    """An object with __slots__: BUILD with (None, slots dict)."""

    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = "two"


class MyError(Exception):
    """A user exception class (module __main__): recognised by its name."""


def model(v):
    """The pyro-codec value model of a Python object (see the module docstring)."""
    t = type(v)
    if isinstance(v, BaseException):
        return {
            "__class__": f"{t.__module__}.{t.__name__}",
            "__exception__": True,
            "args": tuple(model(a) for a in v.args),
            "attributes": {k: model(x) for k, x in vars(v).items()},
        }
    if t is Pyro4.core.URI:
        return {"__class__": "Pyro4.core.URI", "state": tuple(model(x) for x in v.__getstate__())}
    if t is Pyro4.core.Proxy:
        return {"__class__": "Pyro4.core.Proxy",
                "state": tuple(model(x) for x in v.__getstate_for_dict__())}
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
    if t is Slotted:
        return {"__class__": f"{t.__module__}.{t.__name__}", "a": model(v.a), "b": model(v.b)}
    if t.__module__ not in ("builtins",):
        d = {"__class__": f"{t.__module__}.{t.__name__}"}
        d.update({k: model(x) for k, x in vars(v).items()})
        return d
    return v


def exc(cls, *args, tb=True, **attrs):
    e = cls(*args)
    if tb:
        e._pyroTraceback = ["Traceback (most recent call last):\n", '  File "x.py", line 1\n',
                            f"{cls.__name__}: {args[0] if args else ''}\n"]
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


def values():
    """(label, value) pairs: everything Pyro sends."""
    out = [(f"scalar{i:03d}", v) for i, v in enumerate(SCALARS)]
    out += [(f"container{i:03d}", v) for i, v in enumerate(CONTAINERS)]
    shared = [1, "shared"]
    s = "a shared str"
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    out += [
        ("bytes_empty", b""), ("bytes_small", b"\x00\x01abc\xff"), ("bytes_256", bytes(range(256))),
        ("bytes_big", b"\xfe" * 66000), ("str_big", "é" * 33000), ("bytearray", bytearray(b"ba\x00")),
        ("bytearray_empty", bytearray()), ("frozenset", frozenset({1, 2, "x"})),
        ("frozenset_empty", frozenset()), ("set_of_tuples", {(1, 2), (3,), ()}),
        ("complex", 1 + 2j), ("complex_neg", -0.0 - 1.5j),
        ("decimal", decimal.Decimal("1234.5678")), ("decimal_neg", decimal.Decimal("-1E+5")),
        ("datetime", datetime.datetime(2020, 1, 2, 3, 4, 5)),
        ("datetime_us", datetime.datetime(1999, 12, 31, 23, 59, 59, 999999)),
        ("datetime_utc", datetime.datetime(2021, 6, 7, 8, 9, 10, 11, tzinfo=datetime.timezone.utc)),
        ("datetime_tz", datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=tz)),
        ("datetime_fold", datetime.datetime(2021, 11, 7, 1, 30, fold=1)),
        ("date", datetime.date(2020, 1, 2)), ("date_min", datetime.date(1, 1, 1)),
        ("time", datetime.time(13, 14, 15)), ("time_us_tz", datetime.time(1, 2, 3, 4, tzinfo=tz)),
        ("timedelta", datetime.timedelta(days=1, seconds=2, microseconds=3)),
        ("timedelta_neg", datetime.timedelta(days=-3, hours=1)),
        ("uuid", uuid.UUID(int=1)), ("uuid4", uuid.UUID("12345678-1234-5678-9abc-def012345678")),
        ("ordereddict", collections.OrderedDict([("b", 1), ("a", [2])])),
        ("ordereddict_empty", collections.OrderedDict()),
        ("shared_list", [shared, shared, {"k": shared}]), ("shared_str", (s, s, [s])),
        ("big_list", list(range(2500))), ("big_dict", {f"k{i}": i for i in range(1500)}),
        ("big_set", set(range(1200))),
        ("int_keys", {1: "a", (1, "t"): "b", 2.5: None, None: 1, b"k": 2}),
        ("call", ("obj", "method", (1, "a"), {"kw": True})),
        ("thing", Thing()), ("slotted", Slotted()),
        ("exc_valueerror", exc(ValueError, "bad value", 3)),
        ("exc_keyerror", exc(KeyError, "k", extra={"a": 1})),
        ("exc_stopiteration", exc(StopIteration, tb=False)),
        ("exc_unicode", exc(UnicodeDecodeError, "utf-8", b"\xff", 0, 1, "invalid start byte")),
        ("exc_filenotfound", exc(FileNotFoundError, "nofile")),
        ("exc_custom", exc(MyError, "mine")),
        ("exc_namingerror", exc(Pyro4.errors.NamingError, "unknown name: x")),
        ("exc_communicationerror", exc(Pyro4.errors.CommunicationError, "no route", tb=False)),
        ("exc_daemonerror", exc(Pyro4.errors.DaemonError, "unknown object")),
        ("exc_serializeerror", exc(Pyro4.errors.SerializeError, "cannot serialize")),
        ("uri_tcp", Pyro4.core.URI("PYRO:obj@localhost:9999")),
        ("uri_name", Pyro4.core.URI("PYRONAME:foo.bar")),
        ("uri_name_ns", Pyro4.core.URI("PYRONAME:foo@ns.host")),
        ("uri_unix", Pyro4.core.URI("PYRO:obj@./u:/tmp/pyro.sock")),
        ("uri_ipv6", Pyro4.core.URI("PYRO:obj@[::1]:5555")),
        ("uri_meta", Pyro4.core.URI("PYROMETA:tag1@localhost:9090")),
        ("proxy_plain", proxy("PYRO:thing@127.0.0.1:5555")),
        ("proxy_meta", proxy("PYRO:thing1@127.0.0.1:5555", methods=["hi", "ho"], oneway=["hi"],
                             attrs=["prop"], hmac=b"secret\x00key", handshake="hello",
                             serializer="pickle")),
        ("proxy_name", proxy("PYRONAME:some.name", handshake={"user": "x"})),
        ("proxy_ns", proxy("PYRO:Pyro.NameServer@localhost:9090",
                           methods=["ping", "list", "lookup", "register", "remove", "count"],
                           hmac=b"secret", handshake="hello")),
        ("wrapper", Pyro4.futures._ExceptionWrapper(exc(ValueError, "batch failure"))),
        ("batch", [1, "two", Pyro4.futures._ExceptionWrapper(exc(KeyError, "k"))]),
        ("result_with_uri", {"uri": Pyro4.core.URI("PYRO:x@h:1"), "n": 1}),
    ]
    return out


def main():
    w = Writer("pickle")
    # Writer cleans its directory but names its manifest header after gen_codecs.py.
    truncated_from = {"call", "exc_valueerror", "proxy_meta", "datetime_tz", "shared_list"}
    for label, v in values():
        for proto in range(6):
            if proto < 2 and label == "slotted":
                continue  # copyreg refuses __slots__ objects below protocol 2
            if label.endswith("_big") and label.startswith(("bytes", "str")) and proto not in (2, 5):
                continue  # > 64 KiB: written outside frames at protocol 5; keep the data small
            # Pickled as is: shared objects must stay shared (memo opcodes).
            data = pickle.dumps(v, proto)
            loaded = pickle.loads(data)
            w.add(f"{label}_p{proto}", data, "dec", describe(model(loaded)))
            if label in truncated_from and proto in (2, 5):
                for n in range(len(data)):
                    try:
                        got = describe(model(pickle.loads(data[:n])))
                    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError,
                            TypeError, AttributeError, OverflowError):
                        got = "ERR"
                    w.add(f"{label}_p{proto}_trunc{n:03d}", None, "trunc",
                          f"{label}_p{proto}", str(n), got)
    w.close()
    with open(os.path.join(DATA, "pickle", "cases.txt")) as f:
        text = f.read()
    with open(os.path.join(DATA, "pickle", "cases.txt"), "w") as f:
        f.write(text.replace("gen_codecs.py", "gen_pickle.py", 1))


if __name__ == "__main__":
    main()
