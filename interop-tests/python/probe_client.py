"""A long-lived real Pyro4 4.82 client for the hostile-input, fault and load suites.

Reads commands from stdin, one per line, and answers each with one line on stdout:

  echo <uri>         a fresh Proxy calls echo("alive")      -> "ok 'alive'"
  ns <uri>           a fresh Proxy calls list() on a name server -> "ok <number of names>"
  pyroname <uri>     a fresh Proxy (PYRONAME: URI) calls echo("alive")
  quit               exit

An optional third word is the HMAC key the proxy uses (`_pyroHmacKey`).

Errors are answered as "err <Class>: <message>". Starting Python once and probing
after every hostile input keeps the suites fast while still using the real Pyro4.
Every probe is bounded by COMMTIMEOUT so a hanging server fails the probe, not the test.
"""

import sys

import Pyro4
import Pyro4.errors

Pyro4.config.COMMTIMEOUT = 10.0


def probe(kind, uri, key=None):
    with Pyro4.Proxy(uri) as p:
        if key:
            p._pyroHmacKey = key.encode()
        if kind == "ns":
            return len(p.list())
        return p.echo("alive")


def main():
    print("probe ready")
    sys.stdout.flush()
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        kind, uri, key = parts[0], parts[1], (parts[2] if len(parts) > 2 else None)
        try:
            print("ok " + repr(probe(kind, uri, key)))
        except Exception as e:  # noqa: BLE001 - the error is the answer
            print(f"err {type(e).__name__}: {e}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
