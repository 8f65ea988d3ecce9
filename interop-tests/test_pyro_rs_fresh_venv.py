"""Tried as a new user would: a fresh virtual environment, ``pip install`` of this
repository (maturin builds the extension) and of Pyro4 4.82, then Pyro4's own greeting
example with only its import line changed to ``import pyro_rs as Pyro4``, talking to
itself and to a real Pyro4 client.

It builds the extension in release mode and needs the package index (for maturin and
Pyro4): about 2-3 minutes, so it runs only with ``PYRO_RS_FRESH_VENV=1``.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from conftest import _env, _stop, _wait_for_line

pytestmark = pytest.mark.skipif(os.environ.get("PYRO_RS_FRESH_VENV") != "1",
                                reason="set PYRO_RS_FRESH_VENV=1 to build and install into a fresh venv")

# Pyro4's introduction example (greeting-server.py / greeting-client.py), as printed in
# its documentation; the tests change the import line only.
SERVER = textwrap.dedent('''\
    import Pyro4


    @Pyro4.expose
    class GreetingMaker(object):
        def get_fortune(self, name):
            return "Hello, {0}. Here is your fortune message:\\n" \\
                   "Tomorrow's lucky number is 12345678.".format(name)


    daemon = Pyro4.Daemon()                # make a Pyro daemon
    uri = daemon.register(GreetingMaker)   # register the greeting maker as a Pyro object

    print("Ready. Object uri =", uri)      # print the uri so we can use it in the client later
    daemon.requestLoop()                   # start the event loop of the server to wait for calls
''')

CLIENT = textwrap.dedent('''\
    import Pyro4

    uri = input("What is the Pyro uri of the greeting object? ").strip()
    name = input("What is your name? ").strip()

    greeting_maker = Pyro4.Proxy(uri)         # get a Pyro proxy to the greeting object
    print(greeting_maker.get_fortune(name))   # call method normally
''')

EXPECTED = "Hello, {0}. Here is your fortune message:\nTomorrow's lucky number is 12345678."


def test_readme_program_in_a_fresh_venv(tmp_path, repo_root):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(repo_root), "Pyro4==4.82"], check=True,
                   timeout=900, cwd=tmp_path)
    changed = "import pyro_rs as Pyro4"
    server = pathlib.Path(tmp_path / "greeting_server.py")
    server.write_text(SERVER.replace("import Pyro4", changed, 1))
    client = pathlib.Path(tmp_path / "greeting_client.py")
    client.write_text(CLIENT.replace("import Pyro4", changed, 1))
    original_client = pathlib.Path(tmp_path / "pyro4_client.py")
    original_client.write_text(CLIENT)
    proc = subprocess.Popen([python, "-u", str(server)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=tmp_path)
    try:
        uri = _wait_for_line(proc, r"Ready\. Object uri = (\S+)").group(1)
        for script, name in ((client, "Alice"), (original_client, "Bob")):
            out = subprocess.run([python, str(script)], input=f"{uri}\n{name}\n", capture_output=True, text=True,
                                 timeout=60, env=_env(), cwd=tmp_path, check=True)
            assert out.stdout.endswith(EXPECTED.format(name) + "\n"), out.stdout + out.stderr
    finally:
        _stop(proc)
