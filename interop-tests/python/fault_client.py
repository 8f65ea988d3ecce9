"""Real Pyro4 4.82 clients for interop-tests/tests/faults_recovery.rs.

Usage:
  python fault_client.py midcall <uri>
      Calls slow() (the daemon is killed during it) and prints
      "slow<TAB>err <Class>: <message><TAB><seconds>". Then waits for a line on stdin
      (the daemon is back on the same address) and calls echo("back") with the same
      proxy (Pyro4 reconnects it by itself): "again<TAB>ok 'back'".
  python fault_client.py session <uri>
      Opens an item stream (takes one item), creates per-connection session state,
      prints "ready", then blocks in hold(): the test kills this process there.
"""

import sys
import time

import Pyro4
import Pyro4.errors

Pyro4.config.COMMTIMEOUT = 20.0


def out(name, *fields):
    print("\t".join([name] + [str(f) for f in fields]))
    sys.stdout.flush()


def midcall(uri):
    p = Pyro4.Proxy(uri)
    p._pyroBind()
    out("bound", "ok")
    started = time.time()
    try:
        out("slow", "ok " + repr(p.slow()), time.time() - started)
    except Exception as e:  # noqa: BLE001 - the error is the observation
        out("slow", f"err {type(e).__name__}: {e}", f"{time.time() - started:.3f}")
    sys.stdin.readline()
    try:
        out("again", "ok " + repr(p.echo("back")))
    except Exception as e:  # noqa: BLE001
        out("again", f"err {type(e).__name__}: {e}")


def session(uri):
    p = Pyro4.Proxy(uri)
    it = p.numbers()
    out("first", next(it))
    out("session", p.session())
    out("ready")
    p.hold()
    out("unexpected", "hold returned")


def main():
    {"midcall": midcall, "session": session}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
