"""The Python half of scripts/bench: Pyro4 (or pyro_rs) servers, clients and codec loops.

Roles (the first argument):
  server   --impl pyro4 --servertype thread|multiplex   the bench object on 127.0.0.1
  client   --impl pyro4|pyro_rs --uri U --workload W --conns N   load, threads for N > 1
  ns       --impl pyro4|pyro_rs --uri U --op lookup|register     name server load
  codec    serpent 1.43 vs pyro_rs.serpent (and the stdlib pickle/json/marshal) ops/s
  codec-marks  the same operations between os.getppid() markers, for callgrind

Every measuring role prints one JSON object on stdout. Loops are bounded by a count and
a deadline. The payloads are the ones pyro-bench (Rust) builds.
"""

import argparse
import json
import os
import sys
import threading
import time


def payload_dict():
    return {
        "name": "alice",
        "age": 42,
        "score": 1234.5678,
        "active": True,
        "tags": ["a", "b", "c"],
        "nested": {"x": 1, "y": 2},
        "none": None,
        "tuple": (1, 2, 3),
        "text": "x" * 20,
        "neg": -17,
    }


def payload_ints():
    return list(range(10000))


def payload_bytes():
    return bytes(range(256)) * 4096


def payload_text():
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
    return (line * (1000000 // len(line) + 1))[:1000000]


PAYLOADS = {"dict": payload_dict, "ints": payload_ints, "bytes": payload_bytes}


def pyro_module(impl):
    if impl == "pyro_rs":
        import pyro_rs

        return pyro_rs
    import Pyro4

    return Pyro4


def emit(rates, total, **extra):
    print(json.dumps({"runs": [round(r, 3) for r in rates], "total_calls": total, **extra}), flush=True)


# ---- server ---------------------------------------------------------------------------------


def server(args):
    Pyro4 = pyro_module(args.impl)
    Pyro4.config.SERVERTYPE = args.servertype
    # Pyro4's thread pool refuses connections past its size: room for 64 clients + spares.
    Pyro4.config.THREADPOOL_SIZE = 200
    Pyro4.config.THREADPOOL_SIZE_MIN = 4

    lock = threading.Lock()

    @Pyro4.expose
    @Pyro4.behavior(instance_mode="single")
    class BenchObject:
        def __init__(self):
            self._count = 0

        def ping(self):
            return None

        def add(self, a, b):
            return a + b

        def echo(self, x):
            return x

        @Pyro4.oneway
        def notify(self):
            with lock:
                self._count += 1

        def count(self):
            return self._count

    daemon = Pyro4.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(BenchObject(), "bench")
    print(uri, flush=True)
    daemon.requestLoop()


# ---- clients --------------------------------------------------------------------------------


def make_unit(Pyro4, proxy, workload):
    if workload == "ping":
        return lambda: (proxy.ping(), 1)[1]
    if workload == "add":
        return lambda: (proxy.add(1, 2), 1)[1]
    if workload in PAYLOADS:
        value = PAYLOADS[workload]()

        def echo():
            if proxy.echo(value) is None:
                raise RuntimeError("echo returned None")
            return 1

        return echo
    if workload == "batch":

        def batch():
            b = Pyro4.batch(proxy)
            for i in range(1000):
                b.add(i, 1)
            results = list(b())
            if len(results) != 1000:
                raise RuntimeError(f"batch returned {len(results)} results")
            return 1000

        return batch
    raise SystemExit("unknown workload " + workload)


def client(args):
    Pyro4 = pyro_module(args.impl)
    conns = max(1, args.conns)
    proxies = [Pyro4.Proxy(args.uri) for _ in range(conns)]
    for p in proxies:
        p._pyroTimeout = 30
        p._pyroBind()
    if args.workload == "oneway":
        return oneway(proxies[0], args)
    units = [make_unit(Pyro4, p, args.workload) for p in proxies]
    total = 0
    for u in units:
        for _ in range(3):
            total += u()
    rates = []
    per_conn = max(1, args.max_calls // conns)
    for _ in range(args.runs):
        start = time.perf_counter()
        deadline = start + args.duration
        if conns == 1:
            n = 0
            u = units[0]
            while n < per_conn and time.perf_counter() < deadline:
                n += u()
            calls = n
        else:
            counts = [0] * conns
            errors = []

            def work(i, deadline=deadline, counts=counts, errors=errors):
                u, n = units[i], 0
                try:
                    while n < per_conn and time.perf_counter() < deadline:
                        n += u()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                counts[i] = n

            threads = [threading.Thread(target=work, args=(i,)) for i in range(conns)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            calls = sum(counts)
        rates.append(calls / (time.perf_counter() - start))
        total += calls
    emit(rates, total)


def oneway(proxy, args):
    rates, total = [], 0
    for _ in range(args.runs):
        before = proxy.count()
        start = time.perf_counter()
        deadline = start + args.duration
        sent = 0
        while sent < args.max_calls and time.perf_counter() < deadline:
            proxy.notify()
            sent += 1
        give_up = time.perf_counter() + 30
        while proxy.count() - before < sent:
            if time.perf_counter() > give_up:
                raise SystemExit("oneway calls did not complete")
            time.sleep(0.0002)
        rates.append(sent / (time.perf_counter() - start))
        total += sent
    emit(rates, total)


def ns(args):
    Pyro4 = pyro_module(args.impl)
    nsp = Pyro4.Proxy(args.uri)
    target = "PYRO:bench.target@127.0.0.1:9"
    nsp.register("bench.target", target)
    rates, total = [], 0
    for run in range(args.runs + 1):
        start = time.perf_counter()
        deadline = start + (0.05 if run == 0 else args.duration)
        n = 0
        while n < args.max_calls and time.perf_counter() < deadline:
            if args.op == "lookup":
                nsp.lookup("bench.target")
            else:
                nsp.register("bench.tmp", target)
                nsp.remove("bench.tmp")
            n += 1
        if run > 0:
            rates.append(n / (time.perf_counter() - start))
        total += n
    nsp.remove("bench.target")
    emit(rates, total)


# ---- codecs ---------------------------------------------------------------------------------


def codec_libs():
    import marshal
    import pickle

    import pyro_rs.serpent as rs_serpent
    import serpent

    return [
        ("serpent", serpent.dumps, serpent.loads),
        ("pyro_rs.serpent", rs_serpent.dumps, rs_serpent.loads),
        ("pickle", lambda o: pickle.dumps(o, pickle.HIGHEST_PROTOCOL), pickle.loads),
        ("json", lambda o: json.dumps(o).encode("utf-8"), json.loads),
        ("marshal", marshal.dumps, marshal.loads),
    ]


def codec_payloads():
    return [("dict", payload_dict()), ("ints", payload_ints()), ("text", payload_text())]


def codec(args):
    rows = []
    libs = codec_libs()
    if args.only:
        libs = [lib for lib in libs if lib[0] in args.only.split(",")]
    # Each run of a payload and operation is taken for every library in turn: the machine's
    # speed drifts, and the libraries compared must see the same drift.
    for pname, value in codec_payloads():
        for op in ("dumps", "loads"):
            cases = []
            for name, dumps, loads in libs:
                encoded = dumps(value)
                fn, arg = (dumps, value) if op == "dumps" else (loads, encoded)
                for _ in range(2):
                    fn(arg)
                cases.append((name, fn, arg, len(encoded), []))
            for _ in range(args.runs):
                for _name, fn, arg, _size, rates in cases:
                    start = time.perf_counter()
                    deadline = start + args.duration
                    n = 0
                    while n < args.max_calls and time.perf_counter() < deadline:
                        fn(arg)
                        n += 1
                    rates.append(n / (time.perf_counter() - start))
            for name, _fn, _arg, size, rates in cases:
                rows.append({"codec": name, "payload": pname, "op": op,
                             "runs": [round(r, 3) for r in rates], "size": size})
    print(json.dumps({"rows": rows}), flush=True)


def codec_marks(args):
    import gc

    import serpent

    libs = [lib for lib in codec_libs() if lib[0] in args.only.split(",")]
    plan = []
    for name, dumps, loads in libs:
        for pname, value in codec_payloads():
            # The input of loads comes from serpent 1.43 (pyro_rs.serpent writes the same
            # bytes), so a profile of pyro_rs's loads does not include a pyro_rs dumps.
            encoded = serpent.dumps(value) if name == "pyro_rs.serpent" else dumps(value)
            # The small payload runs many times so each segment is well above the noise.
            iters = args.iters * (100 if pname == "dict" else 1)
            for op, fn, arg in (("dumps", dumps, value), ("loads", loads, encoded)):
                if args.op_filter and args.op_filter != f"{pname}/{op}":
                    continue
                fn(arg)  # warm-up: lazy imports and caches are not counted
                plan.append((f"{name}/{pname}/{op}", fn, arg, iters))
    # No garbage collection inside a segment: its cost would land on whichever op ran then.
    gc.collect()
    gc.disable()
    os.getppid()
    for _, fn, arg, iters in plan:
        for _ in range(iters):
            fn(arg)
        os.getppid()
    print(json.dumps({"iters": [p[3] for p in plan], "segments": [p[0] for p in plan]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role")
    ap.add_argument("--impl", default="pyro4", choices=["pyro4", "pyro_rs"])
    ap.add_argument("--servertype", default="thread")
    ap.add_argument("--uri")
    ap.add_argument("--workload", default="ping")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--op", default="lookup")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--max-calls", type=int, default=1000000)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--op-filter", default="", help="codec-marks: only this payload/op")
    args = ap.parse_args()
    roles = {"server": server, "client": client, "ns": ns, "codec": codec, "codec-marks": codec_marks}
    if args.role not in roles:
        raise SystemExit("unknown role " + args.role)
    roles[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
