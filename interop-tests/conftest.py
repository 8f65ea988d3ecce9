"""Shared pytest fixtures: real Pyro4 4.82 servers on 127.0.0.1.

Each fixture starts a separate Python process running real Pyro4 (a test daemon with the
objects the pyro_rs tests call, or Pyro4's own name server), waits (bounded) for the URI
it prints, and kills it on teardown. Ports are chosen by the OS (port 0).
"""

import os
import pathlib
import re
import subprocess
import sys
import textwrap
import time

import pytest

START_TIMEOUT = 20.0

# The Pyro4 side of the pyro_rs client tests: one object with every behaviour the tests
# need, a daemon that checks the handshake and echoes annotations, all on 127.0.0.1:0.
PYRO4_SERVER = textwrap.dedent(r'''
    import sys, threading, time
    import Pyro4, Pyro4.errors, Pyro4.core

    Pyro4.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "pickle"}
    Pyro4.config.COMMTIMEOUT = 0.0

    class Unknown(object):
        def __init__(self):
            self.x = 1

    class CustomError(Exception):
        pass

    @Pyro4.expose
    class Thing(object):
        def __init__(self):
            self._value = 42
            self.last = None
            self.oneway_done = threading.Event()

        def echo(self, *args, **kwargs):
            if kwargs:
                return args, kwargs
            return args[0] if len(args) == 1 else args

        def types(self, x):
            return type(x).__name__

        def describe(self, *args, **kwargs):
            return repr((args, kwargs))

        def fail(self, kind="value"):
            if kind == "value":
                raise ValueError("bad value", 3)
            if kind == "naming":
                raise Pyro4.errors.NamingError("no such name")
            if kind == "custom":
                raise CustomError("custom class")
            if kind == "zero":
                return 1 // 0
            raise KeyError(kind)

        def slow(self, seconds):
            time.sleep(seconds)
            return "slept %s" % seconds

        @Pyro4.oneway
        def set_later(self, value):
            time.sleep(0.3)
            self.last = value

        def get_last(self):
            return self.last

        def generator(self, n):
            for i in range(n):
                yield i * 10

        def unknown(self):
            return Unknown()

        def uri(self):
            return Pyro4.core.URI("PYRO:other@127.0.0.1:1234")

        def proxy(self):
            p = Pyro4.Proxy("PYRO:other@127.0.0.1:1234")
            p._pyroMethods = {"m1"}
            return p

        def annotations(self):
            return {k: bytes(v) for k, v in Pyro4.current_context.annotations.items()}

        def call_back(self, callback, value):
            # A real Pyro4 client calling into whatever daemon serves `callback`.
            return callback.receive(value)

        @property
        def value(self):
            return self._value

        @value.setter
        def value(self, v):
            self._value = v

    class CheckingDaemon(Pyro4.Daemon):
        def validateHandshake(self, conn, data):
            if data == "let me in":
                return "welcome"
            if data == "hello":
                return "hi there"
            raise ValueError("handshake refused: %r" % (data,))

        def annotations(self):
            ann = {"XTRA": b"from-daemon"}
            got = Pyro4.current_context.annotations.get("XCLT")
            if got is not None:
                ann["ECHO"] = bytes(got)
            return ann

    daemon = CheckingDaemon(host="127.0.0.1", port=0)
    uri = daemon.register(Thing(), "test.thing")
    print("URI=%s" % uri, flush=True)
    daemon.requestLoop()
''')


def _wait_for_line(proc, pattern, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    proc.kill()
    raise RuntimeError("server did not start; output:\n" + "".join(seen) + proc.stderr.read())


def _env():
    env = dict(os.environ)
    env["PYRO_BROADCAST_ADDRS"] = "127.0.0.1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYRO_HMAC_KEY", None)
    return env


def _stop(proc):
    proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


@pytest.fixture(scope="session")
def pyro4_server(tmp_path_factory):
    """URI text of the `test.thing` object in a real Pyro4 daemon."""
    script = tmp_path_factory.mktemp("pyro4srv") / "server.py"
    script.write_text(PYRO4_SERVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        m = _wait_for_line(proc, r"URI=(\S+)")
        yield m.group(1)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def pyro4_nameserver():
    """(host, port) of a real Pyro4 name server (no broadcast responder)."""
    proc = subprocess.Popen([sys.executable, "-m", "Pyro4.naming", "-n", "127.0.0.1", "-p", "0", "-x"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        m = _wait_for_line(proc, r"URI = PYRO:Pyro\.NameServer@127\.0\.0\.1:(\d+)")
        yield "127.0.0.1", int(m.group(1))
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def repo_root():
    return pathlib.Path(__file__).resolve().parents[1]
