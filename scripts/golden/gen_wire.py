#!/usr/bin/env python3
"""Generate pyro-wire golden vectors with the real Pyro4 4.82 library.

Writes, under rust-core/pyro-wire/tests/data/:
  wire_messages.json  messages built by Pyro4.message.Message (types, flags, seq,
                      serializer ids, annotations, HMAC keys, compressed payloads),
                      plus hostile byte strings with the error Pyro4's Message.recv raises;
  uris.json           inputs parsed by Pyro4.core.URI: state tuple and str(), or the error text.

Run from anywhere with the project venv:  .venv/bin/python scripts/golden/gen_wire.py
The output is deterministic (fixed CORR values; no set ordering is recorded).
"""

import json
import os
import struct
import sys
import zlib

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.message
import Pyro4.util
from Pyro4.configuration import config
from Pyro4.message import Message

assert Pyro4.__version__ == "4.82", Pyro4.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "rust-core", "pyro-wire", "tests", "data")

CORR = bytes.fromhex("32ed484d7c704acf8f83ed63ca571c30")
CORR2 = bytes.fromhex("fe38a4decd6c423f996b125a4fa635d7")
STRM = b"5e7ae0ab-f6ed-40f5-b40a-b0ed8b88160c"
ECHO = b"# serpent utf-8 python3.2\n('test.echoserver','echo',('hello',),{})"


def serpent_payload(obj, compress):
    """Serialize with Pyro4's own serializer, which applies Pyro4's compression rule."""
    ser = Pyro4.util.get_serializer("serpent")
    return ser.serializeData(obj, compress=compress)


def message_case(name, msg_type, data, ser_id, flags, seq, annotations=None, hmac_key=None, compressed=False):
    wire_flags = flags | (Pyro4.message.FLAGS_COMPRESSED if compressed else 0)
    msg = Message(msg_type, data, ser_id, wire_flags, seq, annotations=annotations, hmac_key=hmac_key)
    wire = msg.to_bytes()
    plain = zlib.decompress(data) if compressed else data
    return {
        "name": name,
        "wire": wire.hex(),
        "msg_type": msg_type,
        "flags": flags,  # as decoded: FLAGS_COMPRESSED cleared
        "wire_flags": wire_flags,
        "seq": seq,
        "serializer_id": ser_id,
        # annotations as given to Pyro4 (no HMAC), in Pyro4's dict (= wire) order
        "annotations": [[k, v.hex()] for k, v in (annotations or {}).items()],
        "hmac_key": hmac_key.hex() if hmac_key else None,
        "compressed": compressed,
        "data": plain.hex(),
    }


def messages():
    m = Pyro4.message
    cases = [
        message_case("a1_invoke", m.MSG_INVOKE, ECHO, 1, 0, 1),
        message_case(
            "a1_result_corr", m.MSG_RESULT, b"# serpent utf-8 python3.2\n'hello'", 1, 0, 1, {"CORR": CORR}
        ),
        message_case("a2_invoke_hmac", m.MSG_INVOKE, ECHO, 1, 0, 1, hmac_key=b"secret"),
        message_case("ping", m.MSG_PING, b"ping", 42, 0, 0),
        message_case("pong_corr_hmac", m.MSG_PING, b"pong", 42, 0, 0, {"CORR": CORR2}, hmac_key=b"secret"),
        message_case(
            "connect_meta",
            m.MSG_CONNECT,
            b"# serpent utf-8 python3.2\n{'handshake':'hello','object':'test.echoserver'}",
            1,
            m.FLAGS_META_ON_CONNECT,
            0,
        ),
        message_case("connectok", m.MSG_CONNECTOK, b"{}", 2, m.FLAGS_META_ON_CONNECT, 7, {"CORR": CORR}),
        message_case(
            "connectfail_marshal", m.MSG_CONNECTFAIL, b"\xfa\x0eunknown object", 3, 0, 3, {"CORR": CORR}
        ),
        message_case(
            "stream_start",
            m.MSG_RESULT,
            b"# serpent utf-8 python3.2\n'x'",
            1,
            m.FLAGS_ITEMSTREAMRESULT | m.FLAGS_EXCEPTION,
            3,
            {"STRM": STRM},
        ),
        message_case(
            "oneway_batch_pickle", m.MSG_INVOKE, b"\x80\x04N.", 4, m.FLAGS_ONEWAY | m.FLAGS_BATCH, 65535
        ),
        message_case(
            "keepserialized_blbi",
            m.MSG_INVOKE,
            b"blob",
            5,
            m.FLAGS_KEEPSERIALIZED,
            300,
            {"BLBI": b"\xa9\x03NNN"},
        ),
        message_case(
            "all_flags_msgpack",
            m.MSG_RESULT,
            b"\x81\xa1a\x01",
            6,
            0x7D,
            0x1234,
            {"USER": b"", "XTRA": b"\x00\xff"},
        ),
        message_case("unknown_flag_bits", m.MSG_RESULT, b"", 7, 0xFF00, 65534),
        message_case("empty_payload_hmac", m.MSG_RESULT, b"", 1, 0, 9, hmac_key=b"k"),
        message_case(
            "hmac_sorted_annotations",
            m.MSG_RESULT,
            b"# serpent utf-8 python3.2\n42",
            1,
            0,
            10,
            {"ZZZZ": b"last", "CORR": CORR, "AAAA": b"first", "STRM": STRM},
            hmac_key="sécret".encode(),
        ),
        message_case(
            "hmac_long_key", m.MSG_INVOKE, ECHO, 1, 0, 11, {"CORR": CORR}, hmac_key=bytes(range(100))
        ),
        message_case("big_annotation", m.MSG_INVOKE, b"x", 1, 0, 12, {"BIGA": bytes(range(256)) * 4}),
    ]
    big = {"numbers": list(range(300)), "text": "spam and eggs " * 40}
    data, compressed = serpent_payload(big, True)
    assert compressed
    cases.append(
        message_case("compressed_result", m.MSG_RESULT, data, 1, 0, 20, {"CORR": CORR}, compressed=True)
    )
    cases.append(
        message_case(
            "compressed_hmac",
            m.MSG_INVOKE,
            data,
            1,
            m.FLAGS_ONEWAY,
            21,
            {"CORR": CORR2},
            hmac_key=b"secret",
            compressed=True,
        )
    )
    data, compressed = serpent_payload(["y" * 150], True)  # under 200 bytes: left alone
    assert not compressed
    cases.append(message_case("compression_skipped_small", m.MSG_RESULT, data, 1, 0, 22))
    noise = bytes((i * 167 + 13) & 0xFF for i in range(256))
    data, compressed = Pyro4.util.get_serializer("serpent")._SerializerBase__compressdata(noise, True)
    assert not compressed  # not smaller: left alone
    cases.append(message_case("compression_skipped_noise", m.MSG_RESULT, data, 1, 0, 23))
    return cases


class FakeConnection:
    """Just enough of Pyro4's socketutil connection for Message.recv."""

    def __init__(self, data):
        self.data = data

    def recv(self, size):
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def close(self):
        pass


def pyro_error(wire, hmac_key=None, max_size=0):
    old = config.MAX_MESSAGE_SIZE
    config.MAX_MESSAGE_SIZE = max_size
    try:
        Message.recv(FakeConnection(wire), None, hmac_key=hmac_key)
    except Pyro4.errors.PyroError as x:
        return type(x).__name__, str(x)
    finally:
        config.MAX_MESSAGE_SIZE = old
    raise AssertionError(f"Pyro4 accepted {wire!r}")


def hostile():
    good = Message(Pyro4.message.MSG_INVOKE, ECHO, 1, 0, 1).to_bytes()
    signed = Message(Pyro4.message.MSG_INVOKE, ECHO, 1, 0, 1, {"CORR": CORR}, hmac_key=b"secret").to_bytes()
    pyro5 = (
        bytes.fromhex("5059524f01f604010000000100000042000000000000000000000000000000000000000000004dc5")
        + ECHO
    )
    bad_sum = good[:22] + struct.pack("!H", (struct.unpack("!H", good[22:24])[0] + 1) & 0xFFFF) + good[24:]
    tampered = signed[:-1] + bytes([signed[-1] ^ 1])
    cases = [
        ("bad_magic", b"PYRX" + good[4:], None, 0),
        ("pyro5_header", pyro5, None, 0),
        ("old_version_47", good[:4] + struct.pack("!H", 47) + good[6:], None, 0),
        ("bad_checksum", bad_sum, None, 0),
        ("junk_shutdown_bytes", b"!" * 24, None, 0),
        ("hmac_mismatch_wrong_key", signed, b"wrong", 0),
        ("hmac_mismatch_tampered", tampered, b"secret", 0),
        ("hmac_missing", good, b"secret", 0),
        ("hmac_unexpected", signed, None, 0),
        ("too_large", good, None, 65),
    ]
    out = []
    for name, wire, key, max_size in cases:
        cls, text = pyro_error(wire, key, max_size)
        out.append(
            {
                "name": name,
                "wire": wire.hex(),
                "hmac_key": key.hex() if key else None,
                "max_message_size": max_size,
                "error_class": cls,
                "error": text,
            }
        )
    return out


URI_INPUTS = [
    "PYRO:obj_123@localhost:9999",
    "pyro:x@[::1]:50000",
    "PyRo:x@127.0.0.1:0",
    "PYRO:x@./u:/tmp/sock",
    "PYRO:Pyro.NameServer@host.example.com:9090",
    "PYRONAME:my.name",
    "pyroname:my.name@nshost",
    "PYRONAME:n@nshost:1234",
    "PYRONAME:n@nshost:",
    "PYRONAME:n@[fe80::1]",
    "PYRONAME:n@[fe80::1%2]:77",
    "PYRONAME:n@./u:ns.sock",
    "PYROMETA:tag1@h:5",
    "PYROMETA:a,b,a,c@h",
    "PYROMETA:one",
    "PYROMETA:,",
    "PYRO:a@b@c:1",
    "PYRO:a@ho st:2",
    "PYRONAME:obj@",
    "PYRO:o@h:1\n",
    "PYRONAME:o\n",
    "PYRO:o@:7",
    "PYRO:o@h: +9_0 ",
    "PYRO:o@h:\x1c5",
    "PYRO:o@h:\xa05\u3000",
    "PYRO:o@h:\t5\r",
    "PYRO:o@[::1]:80junk",
    "PYRO:o@[::1]junk",
    "PYRO:ob\xe9@h:1",
    "PYRO:obj@h:0",
    "PYRO:obj@h:65535",
    "PYRO:obj@h:007",
    "PYRONAME:x@:",
    "PYRO::@h:1",
    # invalid
    "PYRO:obj",
    "PYRO:",
    "",
    "PYRO",
    "PYRO:a b@h:1",
    "PYRX:obj@h:1",
    "PYRO1:obj@h:1",
    "PYROX:obj@h:1",
    "http://x",
    "PYRO:obj@h",
    "PYRO:obj@h:",
    "PYRO:obj@h:abc",
    "PYRO:obj@::1:9",
    "PYRO:obj@./u:",
    "PYRO:obj@./u:a:b",
    "PYRO:obj@[[::1]]:9",
    "PYRO:obj@[host]:9",
    "PYRO:obj@[::1]",
    "PYRO:obj@[]:1",
    "PYRO:o@h:1\n\n",
    "PYRO:o@h\n:1",
    "PYRO:ob\xa0j@h:1",
    "PYRO:ob\x1cj@h:1",
    "PYRO:o@h:0x10",
    "PYRO:o@h:1__0",
    "PYRO:o@h:_1",
    " PYRO:o@h:1",
    "PYRO:o@h:1.5",
    "PYRONAME:n@h:x",
]

# Pyro4 accepts these, but no u16 port (or no ASCII digit) can stand for them: pyro-rs refuses.
URI_DEVIATIONS = ["PYRO:obj@h:65536", "PYRO:obj@h:-1", "PYRO:obj@h:\u0663", "PYRO:obj@[::1]:99999"]


def uri_case(text):
    try:
        u = Pyro4.core.URI(text)
    except Pyro4.errors.PyroError as x:
        return {"input": text, "error": str(x)}
    protocol, obj, sockname, host, port = u.__getstate__()
    case = {
        "input": text,
        "protocol": protocol,
        "sockname": sockname,
        "host": host,
        "port": port,
        "location": u.location,
    }
    if protocol == "PYROMETA":
        case["tags"] = sorted(obj)  # a set in Pyro4: no order to compare
    else:
        case["object"] = obj
        case["str"] = str(u)
    return case


def main():
    os.makedirs(OUT, exist_ok=True)
    wire = {
        "generator": "scripts/golden/gen_wire.py",
        "pyro4": Pyro4.__version__,
        "messages": messages(),
        "hostile": hostile(),
    }
    uris = {
        "generator": "scripts/golden/gen_wire.py",
        "pyro4": Pyro4.__version__,
        "ns_port": config.NS_PORT,
        "cases": [uri_case(t) for t in URI_INPUTS],
        "deviations": [uri_case(t) for t in URI_DEVIATIONS],
    }
    assert all("error" not in c for c in uris["deviations"])
    for name, doc in (("wire_messages.json", wire), ("uris.json", uris)):
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(OUT, name), file=sys.stderr)


if __name__ == "__main__":
    main()
