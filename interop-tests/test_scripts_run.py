"""scripts/run, the main job, as a new user runs it: a Python Pyro4 client reaches the Rust
echo server through the Rust name server it starts, and Ctrl-C stops both cleanly."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scripts_run_serves_a_python_pyro4_client(tmp_path):
    port = free_port()
    env = dict(os.environ, NS_PORT=str(port), DATA_DIR=str(tmp_path / "data"), PROFILE="debug")
    env.pop("PYRO_HMAC_KEY", None)
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 300  # includes a cargo build when nothing is built yet
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        assert any("Press Ctrl-C" in line for line in lines), "".join(lines)

        client = (
            "import sys, Pyro4\n"
            f"p = Pyro4.Proxy('PYRONAME:test.echoserver@127.0.0.1:{port}')\n"
            "print(p.echo('hello from Pyro4'))\n"
            f"ns = Pyro4.locateNS('127.0.0.1', {port})\n"
            "print(sorted(ns.list()))\n"
        )
        out = subprocess.run([sys.executable, "-c", client], check=False, capture_output=True, text=True,
                             timeout=60,
                             env=dict(os.environ, PYRO_BROADCAST_ADDRS="127.0.0.1"))
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["hello from Pyro4", "['Pyro.NameServer', 'test.echoserver']"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
    # 130 is how a shell reports a Ctrl-C that it handled (its trap stopped both servers).
    assert proc.returncode in (0, 130, -signal.SIGINT), rest
    assert "NS shut down." in rest, rest
    # The registrations are durable: the SQLite file holds the echo server's name.
    assert (tmp_path / "data" / "names.sqlite").exists()
