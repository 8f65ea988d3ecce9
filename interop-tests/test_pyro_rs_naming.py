"""pyro_rs's name server (the Rust NameServerDaemon behind ``pyro_rs.naming``) with real
Pyro4 4.82 clients and pyro_rs clients; ``python -m pyro_rs.naming`` and
``python -m pyro_rs.nsc`` against Pyro4's own tools; pickle on the pyro_rs daemon."""

import re
import subprocess
import sys
import threading

import Pyro4
import Pyro4.errors
import Pyro4.naming
import pyro_rs
import pyro_rs.errors
import pyro_rs.naming
import pytest
from conftest import _env, _stop, _wait_for_line

CLIENTS = {"Pyro4": Pyro4, "pyro_rs": pyro_rs}


@pyro_rs.expose
class Service:
    def who(self):
        return "service"


@pytest.fixture
def nameserver(tmp_path):
    """A pyro_rs name server on 127.0.0.1:0, serving, plus a pyro_rs daemon with a service."""
    uri, nsdaemon, bcserver = pyro_rs.naming.startNS(host="127.0.0.1", port=0)
    assert bcserver is None  # Pyro4 starts no broadcast responder on loopback
    ns_thread = threading.Thread(target=nsdaemon.requestLoop, daemon=True)
    ns_thread.start()
    daemon = pyro_rs.Daemon(host="127.0.0.1")
    service_uri = daemon.register(Service(), "service")
    d_thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    d_thread.start()
    yield uri, nsdaemon, service_uri
    daemon.shutdown()
    nsdaemon.shutdown()
    ns_thread.join(timeout=10)
    d_thread.join(timeout=10)


@pytest.mark.parametrize("libname", list(CLIENTS))
def test_registration_with_metadata(nameserver, libname):
    lib = CLIENTS[libname]
    uri, nsdaemon, service_uri = nameserver
    assert uri.object == "Pyro.NameServer"
    with lib.locateNS("127.0.0.1", uri.port) as ns:
        ns.ping()
        ns.register("test.service", str(service_uri), metadata={"role:worker", "tier:1"})
        ns.register("test.other", "PYRO:other@127.0.0.1:1", metadata={"role:other"})
        found, meta = ns.lookup("test.service", return_metadata=True)
        assert str(found) == str(service_uri)
        assert set(meta) == {"role:worker", "tier:1"}
        assert set(ns.list(prefix="test.")) == {"test.service", "test.other"}
        assert set(ns.list(metadata_all={"role:worker", "tier:1"})) == {"test.service"}
        assert set(ns.list(metadata_any={"role:other", "tier:1"})) == {"test.service", "test.other"}
        with pytest.raises(lib.errors.NamingError):
            ns.lookup("no.such.name")
        # PYRONAME and PYROMETA resolve through this name server to the pyro_rs daemon.
        with lib.Proxy(f"PYRONAME:test.service@127.0.0.1:{uri.port}") as p:
            assert p.who() == "service"
        with lib.Proxy(f"PYROMETA:role:worker@127.0.0.1:{uri.port}") as p:
            assert p.who() == "service"
        ns.set_metadata("test.service", {"changed"})
        assert set(ns.list(metadata_all={"changed"})) == {"test.service"}
        assert ns.remove(prefix="test.") == 2
    # the local NameServer object of the daemon talks to the same registrations
    assert nsdaemon.nameserver.count() == 1


def test_objects_next_to_the_name_server(nameserver):
    uri, nsdaemon, _ = nameserver
    obj_uri = nsdaemon.register(Service())
    assert obj_uri.port == uri.port
    with Pyro4.Proxy(str(obj_uri)) as p:
        assert p.who() == "service"


def test_sql_storage_persists(tmp_path):
    db = tmp_path / "ns.sqlite"
    uri, daemon, _ = pyro_rs.naming.startNS(host="127.0.0.1", port=0, storage=f"sql:{db}")
    daemon.nameserver.register("kept", "PYRO:kept@127.0.0.1:1", metadata={"m"})
    daemon.close()
    uri, daemon, _ = pyro_rs.naming.startNS(host="127.0.0.1", port=0, storage=f"sql:{db}")
    try:
        assert "Persistent store contains 2 existing registrations." in daemon._pyro_startup_lines()
        with Pyro4.locateNS("127.0.0.1", uri.port) as ns:
            assert ns.lookup("kept", return_metadata=True)[1] == ["m"] or \
                set(ns.lookup("kept", return_metadata=True)[1]) == {"m"}
    finally:
        daemon.close()
    with pytest.raises(ValueError, match="invalid storage type"):
        pyro_rs.naming.startNS(host="127.0.0.1", port=0, storage="bogus:x")


def _start_ns(module):
    proc = subprocess.Popen([sys.executable, "-m", module, "-n", "127.0.0.1", "-p", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    lines = []
    while True:
        m = _wait_for_line(proc, r".*")
        lines.append(m.group(0).rstrip("\n"))
        if lines[-1].startswith("URI = "):
            return proc, lines


def _normalize(lines):
    return [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line) for line in lines]


def _nsc(module, port, *args):
    out = subprocess.run([sys.executable, "-m", module, "-n", "127.0.0.1", "-p", str(port), *args],
                         capture_output=True, text=True, env=_env(), timeout=60, check=False)
    return out.stdout


def test_command_line_tools_match_pyro4():
    """``python -m pyro_rs.naming`` prints what ``python -m Pyro4.naming`` prints, and
    ``pyro_rs.nsc`` gives the same output as ``Pyro4.nsc`` against it."""
    ours, our_lines = _start_ns("pyro_rs.naming")
    theirs, their_lines = _start_ns("Pyro4.naming")
    try:
        assert _normalize(our_lines) == _normalize(their_lines)
        port = int(our_lines[-1].rsplit(":", 1)[1])
        undo = {
            "register": ("remove", "a.name"),
            "setmeta": ("setmeta", "a.name"),
            "remove": ("register", "a.name", "PYRO:x@127.0.0.1:5"),
        }
        for args in (("ping",), ("register", "a.name", "PYRO:x@127.0.0.1:5"), ("lookup", "a.name"),
                     ("setmeta", "a.name", "tag1"), ("listmeta_all", "tag1"), ("list",), ("list", "a."),
                     ("listmatching", "a.*"), ("lookup", "missing"), ("remove", "a.name"), ("remove", "a.name")):
            mine = _nsc("pyro_rs.nsc", port, *args)
            # A command that changed the registrations is undone, so Pyro4's nsc runs on
            # the same state (and redoes the change for the next command).
            if args[0] in undo and "Nothing removed" not in mine:
                _nsc("pyro_rs.nsc", port, *undo[args[0]])
            reference = _nsc("Pyro4.nsc", port, *args)
            assert mine == reference, args
    finally:
        _stop(ours)
        _stop(theirs)


class TestPickle:
    """pickle is refused unless accepted (Pyro4's rule); accepted, builtins, exceptions and
    Pyro4 classes go through the Rust pickle codec."""

    @pytest.fixture
    def pickle_daemon(self, monkeypatch):
        monkeypatch.setattr(pyro_rs.config, "SERIALIZERS_ACCEPTED", {"serpent", "pickle"})

        @pyro_rs.expose
        class Echo:
            def echo(self, x):
                return x

            def fail(self):
                raise ValueError("pickled failure")

            def uri(self):
                return pyro_rs.URI("PYRO:obj@127.0.0.1:1234")

        daemon = pyro_rs.Daemon(host="127.0.0.1")
        uri = str(daemon.register(Echo(), "echo"))
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        yield uri
        daemon.shutdown()
        thread.join(timeout=10)

    def test_pickle_accepted(self, pickle_daemon):
        with Pyro4.Proxy(pickle_daemon) as p:
            p._pyroSerializer = "pickle"
            value = [1, "x", {"a": (1, 2)}, b"\x00b", {1, 2}, 2 ** 70, 1.5, None]
            assert p.echo(value) == value
            with pytest.raises(ValueError, match="pickled failure") as exc:
                p.fail()
            assert "raise ValueError" in "".join(exc.value._pyroTraceback)
            uri = p.uri()
            assert isinstance(uri, Pyro4.core.URI)
            assert str(uri) == "PYRO:obj@127.0.0.1:1234"

    def test_pickle_refused_by_default(self):
        daemon = pyro_rs.Daemon(host="127.0.0.1")
        uri = str(daemon.register(Service(), "svc"))
        thread = threading.Thread(target=daemon.requestLoop, daemon=True)
        thread.start()
        try:
            with Pyro4.Proxy(uri) as p:
                p._pyroSerializer = "pickle"
                with pytest.raises(Pyro4.errors.CommunicationError, match="serializer that is not accepted: 4"):
                    p.who()
        finally:
            daemon.shutdown()
            thread.join(timeout=10)
