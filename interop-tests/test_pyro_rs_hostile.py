"""Hostile input against the pyro_rs (Python binding) Daemon, mirroring
tests/hostile_input.rs (which covers the pure-Rust daemon and name server).

A pyro_rs Daemon serving an echo object runs in a subprocess (COMMTIMEOUT=2, pickle in
SERIALIZERS_ACCEPTED, a second daemon with an HMAC key). Each case sends raw bytes over
a socket; afterwards a real Pyro4 4.82 client must be served and the daemon process's
RSS must stay under 2x its post-warm-up value + 50 MB. Every wait is bounded.
"""

import os
import random
import socket
import struct
import subprocess
import sys
import textwrap
import time

import Pyro4
import Pyro4.constants
import Pyro4.message
import Pyro4.util
import pytest
from conftest import _env, _stop, _wait_for_line

PYTHON = "/work/main/.venv/bin/python"
if not os.path.exists(PYTHON):
    PYTHON = sys.executable
KEY = b"hostile-secret"
MARKER = f"/tmp/pyro_rs_hostile_pwned_{os.getpid()}"
HEADER = Pyro4.message.Message.header_size
SERPENT, JSON, MARSHAL, PICKLE = 1, 2, 3, 4

SERVER = textwrap.dedent(r'''
    import sys, threading
    import pyro_rs

    pyro_rs.config.COMMTIMEOUT = 2.0
    pyro_rs.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "pickle"}

    @pyro_rs.expose
    class Echo:
        def echo(self, *args):
            return args[0] if len(args) == 1 else list(args)

    plain = pyro_rs.Daemon(host="127.0.0.1", port=0)
    keyed = pyro_rs.Daemon(host="127.0.0.1", port=0)
    keyed._pyroHmacKey = sys.argv[1].encode()
    print("URI=%s KEYED=%s" % (plain.register(Echo(), "echo"), keyed.register(Echo(), "echo")), flush=True)
    threading.Thread(target=keyed.requestLoop, daemon=True).start()
    plain.requestLoop()
''')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    script = tmp_path_factory.mktemp("pyro_rs_hostile") / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([PYTHON, str(script), KEY.decode()], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        m = _wait_for_line(proc, r"URI=(\S+) KEYED=(\S+)")
        uri, keyed = m.group(1), m.group(2)
        for _ in range(20):  # warm-up: allocator, worker threads, serializers
            assert call(uri) == "alive"
        time.sleep(0.2)
        yield {"uri": uri, "keyed": keyed, "proc": proc, "baseline": rss_kib(proc.pid)}
    finally:
        _stop(proc)
        if os.path.exists(MARKER):
            os.unlink(MARKER)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def call(uri, key=None, value="alive"):
    """One echo call by a real Pyro4 4.82 client, on a fresh connection."""
    with Pyro4.Proxy(uri) as p:
        p._pyroTimeout = 10
        if key:
            p._pyroHmacKey = key
        return p.echo(value)


def addr(uri):
    u = Pyro4.URI(uri)
    return u.host, u.port


def msg(msg_type, data, ser=SERPENT, seq=0, annotations=None, hmac_key=None, flags=0):
    return Pyro4.message.Message(msg_type, data, ser, flags, seq, annotations, hmac_key).to_bytes()


def connect_bytes(annotations=None, hmac_key=None):
    data = Pyro4.util.get_serializer("serpent").dumps({"handshake": "hello", "object": "echo"})
    return msg(Pyro4.message.MSG_CONNECT, data, annotations=annotations, hmac_key=hmac_key)


def invoke(ser, payload, annotations=None):
    return msg(Pyro4.message.MSG_INVOKE, payload, ser=ser, seq=1, annotations=annotations)


def serpent_call(args):
    return f"# serpent utf-8 python3.2\n('echo','echo',({args},),{{}})".encode()


def with_header(data, **fields):
    """Rewrite header fields of `data`, recomputing the checksum as Pyro4 does."""
    h = Pyro4.message.Message.from_header(data[:HEADER])
    for k, v in fields.items():
        setattr(h, k, v)
    h.data = b""
    return h.to_bytes() + data[HEADER:]


def raw_connect(host, port):
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    return s


def handshake(host, port):
    s = raw_connect(host, port)
    s.sendall(connect_bytes())
    head = recv_exact(s, HEADER)
    reply = Pyro4.message.Message.from_header(head)
    assert reply.type == Pyro4.message.MSG_CONNECTOK, reply
    recv_exact(s, reply.data_size + reply.annotations_size)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def send_and_drain(s, data):
    """Send, half-close, read until the server closes (bounded: 10 s per read)."""
    with s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close early (oversized claim)
        total = 0
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return total
            except socket.timeout:
                raise AssertionError("server neither answered nor closed within 10 s") from None
            if not chunk:
                return total
            total += len(chunk)


def _pre_cases():
    rnd = random.Random(0x5EED)
    good = connect_bytes()
    cases = {}
    for i in range(4):
        cases[f"random_{i}"] = rnd.randbytes(rnd.randint(1, 8192))
        cases[f"random_after_magic_{i}"] = b"PYRO\x00\x30" + rnd.randbytes(rnd.randint(18, 512))
    cases["wrong_magic"] = b"PYRX" + good[4:]
    cases["bad_checksum"] = good[:22] + bytes([good[22] ^ 0x5A]) + good[23:]
    cases["pyro5_protocol_502"] = good[:4] + struct.pack("!H", 502) + good[6:]
    cases["size_claim_2gb"] = with_header(good[:HEADER], data_size=0x7FFFFFFF) + b"x" * (4 << 20)
    cases["truncated_header"] = good[:10]
    with_ann = connect_bytes(annotations={"XTRA": b"\x07" * 64})
    cases["truncated_annotations"] = with_ann[:HEADER + 20]
    cases["truncated_payload"] = good[:-5]
    cases["annotation_overrun"] = with_ann[:HEADER + 4] + struct.pack("!H", 0xFFF0) + with_ann[HEADER + 6:]
    cases["annotations_1000_connect"] = connect_bytes(annotations={f"{i:04d}": bytes([i % 251]) * 3
                                                                   for i in range(1000)})
    for ser, payload in [(SERPENT, b"# serpent utf-8 python3.2\n{'handshake': [[[["),
                         (JSON, b'{"handshake": \xff\xfe'),
                         (MARSHAL, b"\xdb\xff\xff\xff\x7f"),
                         (PICKLE, b"cos\nsystem\n(S'touch " + MARKER.encode() + b"'\ntR."),
                         (9, b"unknown serializer id")]:
        cases[f"connect_garbage_ser{ser}"] = msg(Pyro4.message.MSG_CONNECT, payload, ser=ser)
    return cases


def _post_cases():
    rnd = random.Random(42)
    cases = {}
    cases["serpent_nested_100000"] = invoke(SERPENT, b"# serpent utf-8 python3.2\n" + b"[" * 100_000)
    cases["serpent_million_digit_int"] = invoke(SERPENT, serpent_call("9" * 1_000_000))
    bad = serpent_call("'ab'")
    cases["serpent_invalid_utf8"] = invoke(SERPENT, bad[:-8] + b"\xc3\xff" + bad[-7:])
    cases["serpent_unknown_class"] = invoke(SERPENT, serpent_call(
        f"{{'__class__':'os.system','args':('touch {MARKER}',),'__reduce__':'x'}}"))
    # kwargs that recreate_classes turns into a float (this once hit an unreachable!)
    cases["serpent_kwargs_float_class"] = invoke(
        SERPENT, b"# serpent utf-8 python3.2\n('echo','echo',(),{'__class__':'float','value':'1.5'})")
    cases["json_garbage"] = invoke(JSON, b'{"object": [[[[[[[[ \xff')
    cases["json_nested_100000"] = invoke(JSON, b'{"object": ' + b"[" * 100_000)
    cases["json_huge_number"] = invoke(JSON, b'{"object": "echo", "method": "echo", "params": [%s], "kwargs": {}}'
                                       % (b"7" * 500_000))
    cases["marshal_list_claims_2g_items"] = invoke(MARSHAL, b"\xdb\xff\xff\xff\x7f")
    cases["marshal_string_claims_2gb"] = invoke(MARSHAL, b")\x04\xfa\x04echo\xfa\x04echo\xda\xff\xff\xff\x7fab")
    for i in range(3):
        cases[f"marshal_random_{i}"] = invoke(MARSHAL, b")" + rnd.randbytes(200))
    cases["pickle_os_system_reduce"] = invoke(PICKLE, b"cos\nsystem\n(S'touch " + MARKER.encode() + b"'\ntR.")
    cases["pickle_binunicode8_2_62"] = invoke(PICKLE, b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b".")
    cases["pickle_binbytes_2gb"] = invoke(PICKLE, b"\x80\x03B" + struct.pack("<I", 0x7FFFFFFF) + b"ab.")
    laughs = b"\x80\x02]\x94"
    for level in range(40):  # a list of ten references to the previous level, memoised again
        laughs += b"(" + b"h" + bytes([level]) + (b"h" + bytes([level])) * 9 + b"l\x94"
    cases["pickle_billion_laughs"] = invoke(PICKLE, laughs + b".")
    cases["pickle_marks_100000"] = invoke(PICKLE, b"\x80\x02" + b"(" * 100_000 + b"l" * 100_000 + b".")
    cases["invoke_annotations_1000"] = invoke(SERPENT, serpent_call("'annotated'"),
                                              annotations={f"{i:04d}": b"\x01\x02\x03" for i in range(1000)})
    cases["invoke_random_body"] = invoke(SERPENT, random.Random(7).randbytes(3000))
    return cases


PRE = _pre_cases()
POST = _post_cases()


def check_served_and_bounded(server, what):
    assert call(server["uri"]) == "alive", f"after {what}"
    rss = rss_kib(server["proc"].pid)
    limit = 2 * server["baseline"] + 50 * 1024
    assert rss < limit, f"after {what}: daemon RSS {rss} KiB > {limit} KiB (baseline {server['baseline']})"


@pytest.mark.parametrize("name", sorted(PRE))
def test_pre_handshake_input(server, name):
    send_and_drain(raw_connect(*addr(server["uri"])), PRE[name])
    check_served_and_bounded(server, name)
    assert not os.path.exists(MARKER), "a hostile payload ran a command"


@pytest.mark.parametrize("name", sorted(POST))
def test_post_handshake_input(server, name):
    send_and_drain(handshake(*addr(server["uri"])), POST[name])
    check_served_and_bounded(server, name)
    assert not os.path.exists(MARKER), "a hostile payload ran a command"


def test_hmac_mismatch_is_refused_and_keyed_daemon_keeps_serving(server):
    host, port = addr(server["keyed"])
    for wrong in (b"wrong-key", None):
        answered = send_and_drain(raw_connect(host, port), connect_bytes(hmac_key=wrong))
        # Pyro4 closes (possibly after a CONNECTFAIL) on a bad or missing HMAC: no CONNECTOK.
        assert answered < 200, f"{answered} bytes answered to a bad HMAC"
        assert call(server["keyed"], key=KEY) == "alive"
    with pytest.raises(Pyro4.errors.CommunicationError):
        call(server["keyed"])  # an unkeyed client is refused
    check_served_and_bounded(server, "hmac mismatch")


def trickle(s, data, limit=6):
    """Send one byte a second; return the seconds until the server dropped us (or None)."""
    s.settimeout(1.0)
    started = time.monotonic()
    with s:
        for b in data[:limit]:
            try:
                s.sendall(bytes([b]))
                if not s.recv(64):
                    return time.monotonic() - started
            except socket.timeout:
                continue
            except OSError:
                return time.monotonic() - started
    return None


# COMMTIMEOUT bounds a whole message (the daemon sets one deadline per message), so a
# client trickling a byte a second is dropped although no single gap reaches 2 s.


def test_slow_handshake_is_dropped_after_commtimeout(server):
    host, port = addr(server["uri"])
    t = trickle(raw_connect(host, port), connect_bytes())
    check_served_and_bounded(server, "slow handshake")
    assert t is not None and t < 4.5, f"slow handshake dropped after {t!r} s"


def test_slow_request_is_dropped_after_commtimeout(server):
    host, port = addr(server["uri"])
    t = trickle(handshake(host, port), invoke(SERPENT, serpent_call("'slow'")))
    check_served_and_bounded(server, "slow request")
    assert t is not None and t < 4.5, f"slow request dropped after {t!r} s"


def test_idle_client_is_dropped_after_commtimeout(server):
    host, port = addr(server["uri"])
    idle = handshake(host, port)
    started = time.monotonic()
    with idle:
        try:
            assert idle.recv(8) == b""
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4.5, f"idle client dropped after {elapsed:.1f} s"
    check_served_and_bounded(server, "idle client")


BAD_CALLS = {
    # recreate_classes makes the kwargs a float, which Python cannot pass as **kwargs
    "kwargs_float_class": "('echo','echo',(),{'__class__':'float','value':'1.5'})",
    "truncated_tuple": "('echo','echo',(1,2),{}",
    "vargs_not_a_sequence": "('echo','echo',5,{})",
    "three_items": "('echo','echo',(1,))",
    "kwargs_a_list": "('echo','echo',(1,),[])",
    "trailing_data": "('echo','echo',(1,),{}) 7",
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_serpent_calls_are_answered(server, name):
    """Calls whose target reads fine but whose whole payload is no call: the daemon answers
    with a SerializeError (never drops the request unanswered), then closes the connection,
    and serves the next client."""
    s = handshake(*addr(server["uri"]))
    with s:
        s.sendall(invoke(SERPENT, b"# serpent utf-8 python3.2\n" + BAD_CALLS[name].encode()))
        head = recv_exact(s, HEADER)
        reply = Pyro4.message.Message.from_header(head)
        body = recv_exact(s, reply.annotations_size + reply.data_size)[reply.annotations_size:]
        assert reply.type == Pyro4.message.MSG_RESULT, reply
        assert reply.flags & Pyro4.message.FLAGS_EXCEPTION, reply
        error = Pyro4.util.get_serializer("serpent").loads(body)
        assert isinstance(error, Pyro4.errors.SerializeError), repr(error)
        assert s.recv(1) == b"", "the connection stays open after a SerializeError"
    check_served_and_bounded(server, name)
