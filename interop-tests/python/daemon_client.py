"""Real Pyro4 4.82 client driven by the daemon interop tests (interop-tests/tests/daemon_*.rs).

Usage: python daemon_client.py <scenario> <uri> [args...]

Every scenario prints one line per observation, "name<TAB>observation", where the
observation is a canonical repr (sets sorted, so two processes print the same text).
The Rust tests run the same scenario against the pyro-rs daemon and against Python's
own `Pyro4.test.echoserver` and compare, and also check some observations directly.
A scenario that cannot run at all exits non-zero with a traceback.
"""

import sys
import threading
import time

import Pyro4
import Pyro4.errors
import Pyro4.util

# Bounded waits: a hanging daemon makes the client fail instead of blocking the test.
Pyro4.config.COMMTIMEOUT = 15.0


def canon(v):
    """repr() with sets and frozensets sorted (their order differs between processes)."""
    if isinstance(v, (set, frozenset)):
        return "{}({{{}}})".format(type(v).__name__, ", ".join(sorted(canon(x) for x in v)))
    if isinstance(v, tuple):
        return "({}{})".format(", ".join(canon(x) for x in v), "," if len(v) == 1 else "")
    if isinstance(v, list):
        return "[{}]".format(", ".join(canon(x) for x in v))
    if isinstance(v, dict):
        return "{{{}}}".format(", ".join(f"{canon(k)}: {canon(x)}" for k, x in v.items()))
    return repr(v)


# The daemon's port differs between the two daemons compared; it is masked in output.
PORT = None


def out(name, text):
    text = str(text)
    if PORT:
        text = text.replace(PORT, "<port>")
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    print(f"{name}\t{text}")
    sys.stdout.flush()


def attempt(name, fn):
    """Record fn()'s result, or the exception class and message it raised."""
    try:
        out(name, "ok " + canon(fn()))
    except Exception as e:  # noqa: BLE001 - every exception is an observation here
        out(name, f"err {type(e).__module__}.{type(e).__name__}: {e}")
        return e
    return None


def unordered(sent, got):
    """A set may come back as a list or tuple (json); its order is arbitrary, so sort it."""
    if isinstance(sent, (set, frozenset)) and isinstance(got, (list, tuple)):
        return type(got)(sorted(got, key=repr))
    return got


def sorted_meta(meta):
    return {k: sorted(v) for k, v in meta.items()}


def proxy(uri, ser):
    p = Pyro4.Proxy(uri)
    p._pyroSerializer = ser
    return p


def values(p):
    return [
        ("none", None),
        ("true", True),
        ("false", False),
        ("zero", 0),
        ("neg", -1),
        ("i64max", 2**63 - 1),
        ("big", 2**64 + 5),
        ("negbig", -(2**100)),
        ("float", 1.5),
        ("negzero", -0.0),
        ("huge", 1e300),
        ("tiny", 5e-324),
        ("inf", float("inf")),
        ("neginf", float("-inf")),
        ("nan", float("nan")),
        ("complex", 1 + 2j),
        ("empty_str", ""),
        ("unicode", "h\u00e9llo \u2603 \U0001f600 \u0000 end"),
        ("quotes", "a'b\"c\\n\r\t"),
        ("bytes", b"bytes\x00\xff"),
        ("bytearray", bytearray(b"ab")),
        ("empty_tuple", ()),
        ("one_tuple", (1,)),
        ("tuple", (1, "a", None, 2.5)),
        ("empty_list", []),
        ("nested_list", [1, [2, [3, [4]]]]),
        ("empty_set", set()),
        ("int_set", {1, 2, 3}),
        ("str_set", {"a", "b", "c"}),
        ("frozenset", frozenset({"x"})),
        ("empty_dict", {}),
        ("dict", {"a": 1, "b": [1, 2], "c": {"d": None}}),
        ("int_keys", {1: "one", 2: "two"}),
        ("tuple_key", {(1, 2): "t"}),
        ("mixed_keys", {"s": 1, 2: "i", None: 3, True: 4}),
        ("deep", {"nested": {"deep": [1, (2, {3: (4,)})]}}),
        ("long_str", "x" * 100000),
        ("long_list", list(range(5000))),
        ("class_dict", {"__class__": "foo.Bar", "x": 1}),
    ]


def scenario_values(uri, ser):
    p = proxy(uri, ser)
    for name, v in values(p):
        attempt("echo_" + name, lambda v=v: unordered(v, p.echo(v)))
    attempt("echo_kwarg", lambda: p.echo(message="kw"))
    attempt("nan", lambda: repr(p.nan()))
    attempt("inf", lambda: p.inf())
    attempt("dunder", lambda: p.__dunder__())


def scenario_errors(uri, ser):
    p = proxy(uri, ser)
    for name, fn in [
        ("error", lambda: p.error()),
        ("error_with_text", lambda: p.error_with_text()),
        ("missing_arg", lambda: p.echo()),
        ("extra_arg", lambda: p.echo(1, 2)),
        ("bad_kwarg", lambda: p.echo(msg=1)),
        ("private", lambda: p._pyroInvoke("_private", (), {})),
        ("private_dunder", lambda: p._pyroInvoke("__init__", (), {})),
        ("unknown_method", lambda: p._pyroInvoke("no_such_method", (), {})),
        ("attr_as_method", lambda: p._pyroInvoke("verbose", (), {})),
        ("unknown_object", lambda: proxy(uri.replace("test.echoserver", "no.such.object"), ser).echo(1)),
        ("daemon_unknown_meta", lambda: proxy(daemon_uri(uri), ser).get_metadata("nope")),
    ]:
        e = attempt(name, fn)
        if e is not None and name.startswith("error"):
            tb = getattr(e, "_pyroTraceback", None)
            out(name + "_traceback", f"ok list={isinstance(tb, list)} last={tb[-1] if tb else None!r}")
    if ser != "marshal":  # Pyro4's marshal proxy cannot send kwargs=None (known bug)
        attempt("getattr_unknown", lambda: p._pyroInvoke("__getattr__", ("nope",), None))
        attempt("setattr_unknown", lambda: p._pyroInvoke("__setattr__", ("nope", 1), None))
    # the connection is still usable after all of that
    attempt("after_errors", lambda: p.echo("still alive"))


def daemon_uri(uri):
    return "PYRO:" + Pyro4.constants.DAEMON_NAME + "@" + uri.split("@", 1)[1]


def scenario_features(uri, ser):
    p = proxy(uri, ser)
    attempt(
        "metadata",
        lambda: (
            sorted(p._pyroMethods) if p._pyroBind() else None,
            sorted(p._pyroOneway),
            sorted(p._pyroAttrs),
        ),
    )
    start = time.time()
    attempt("oneway_echo", lambda: p.oneway_echo("x"))
    attempt("oneway_slow", lambda: p.oneway_slow())
    attempt("oneway_fast", lambda: time.time() - start < 2.0)
    attempt("after_oneway", lambda: p.echo("next"))
    attempt("generator", lambda: list(p.generator()))
    attempt("generator_twice", lambda: (list(p.generator()), list(p.generator())))

    def partial():
        it = p.generator()
        first = next(it)
        it.close()  # sends close_stream (oneway)
        return first, p.echo("after close")

    attempt("generator_partial", partial)
    d = proxy(daemon_uri(uri), ser)
    attempt("daemon_ping", lambda: d.ping())
    attempt("daemon_registered", lambda: sorted(d.registered()))
    attempt(
        "daemon_metadata",
        lambda: (
            type(d.get_metadata("test.echoserver")["methods"]).__name__,
            sorted_meta(d.get_metadata("test.echoserver")),
        ),
    )
    attempt(
        "daemon_metadata_lists",
        lambda: (
            type(d.get_metadata("test.echoserver", True)["methods"]).__name__,
            sorted_meta(d.get_metadata("test.echoserver", True)),
        ),
    )
    attempt("daemon_info", lambda: d.info().startswith("Pyro.Daemon bound on "))
    attempt("stream_unknown", lambda: d.get_next_stream_item("no-such-stream"))
    if ser != "marshal":  # marshal proxies cannot do attributes or batches (Pyro4 bug)
        attempt("verbose_get", lambda: p.verbose)

        def set_verbose():
            p.verbose = True
            v = p.verbose
            p.verbose = False
            return v, p.verbose

        attempt("verbose_set", set_verbose)
        b = Pyro4.batch(p)
        b.echo(1)
        b.echo("two")
        b.error()
        b.echo(4)

        def run_batch():
            got = []
            try:
                got.extend(b())
            except Exception as e:  # noqa: BLE001
                got.append(f"{type(e).__name__}: {e}")
            return got

        attempt("batch", run_batch)
        b2 = Pyro4.batch(p)
        b2.echo(1)
        b2.no_such_method()
        attempt("batch_unknown_method", lambda: list(b2()))
        b3 = Pyro4.batch(p)
        b3.oneway_echo(1)
        b3.echo(2)
        attempt("batch_oneway", lambda: b3(oneway=True))
        attempt("after_batch", lambda: p.echo("after batch"))
    with Pyro4.Proxy(uri) as p2:
        p2._pyroSerializer = ser
        p2._pyroMaxRetries = 0
        attempt("correlation", lambda: corr_call(p2))


def corr_call(p):
    import uuid

    cid = uuid.uuid4()
    Pyro4.current_context.correlation_id = cid
    try:
        p.echo(1)
        # Pyro4 daemons echo the request's CORR on normal results.
        got = Pyro4.current_context.response_annotations.get("CORR")
        return got == cid.bytes
    finally:
        Pyro4.current_context.correlation_id = None


def scenario_hmac(uri, ser, key):
    p = proxy(uri, ser)
    if key != "-":
        p._pyroHmacKey = key.encode("utf-8")
    attempt("hmac_echo", lambda: p.echo("signed"))
    attempt("hmac_again", lambda: p.echo("again"))


def scenario_concurrent(uri, ser, count):
    count = int(count)
    barrier = threading.Barrier(count)
    results = [None] * count
    proxies = [proxy(uri, ser) for _ in range(count)]

    def worker(i):
        try:
            proxies[i]._pyroBind()
            barrier.wait(timeout=60)  # all connections open at the same time
            results[i] = proxies[i].echo(i) == i and proxies[i].echo("x" * 1000) == "x" * 1000
        except Exception as e:  # noqa: BLE001
            results[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ok = sum(1 for r in results if r is True)
    out("concurrent_ok", f"ok {ok}")
    failures = sorted({str(r) for r in results if r is not True})
    out("concurrent_failures", "ok " + repr(failures[:5]))
    for p in proxies:
        p._pyroRelease()


def scenario_limit(uri, ser, count):
    """Open `count` connections and keep them; report how each handshake went."""
    count = int(count)
    held = []
    outcomes = []
    for _ in range(count):
        p = proxy(uri, ser)
        try:
            p._pyroBind()
            held.append(p)
            outcomes.append("ok")
        except Exception as e:  # noqa: BLE001
            outcomes.append(f"{type(e).__name__}: {e}")
    for i, o in enumerate(outcomes):
        out(f"conn_{i}", o)
    for p in held:
        p._pyroRelease()
    time.sleep(0.3)
    attempt("after_release", lambda: proxy(uri, ser).echo("free again"))


def main():
    global PORT
    scenario, uri = sys.argv[1], sys.argv[2]
    PORT = uri.rsplit(":", 1)[1]
    rest = sys.argv[3:]
    {
        "values": scenario_values,
        "errors": scenario_errors,
        "features": scenario_features,
        "hmac": scenario_hmac,
        "concurrent": scenario_concurrent,
        "limit": scenario_limit,
    }[scenario](uri, *rest)


if __name__ == "__main__":
    main()
