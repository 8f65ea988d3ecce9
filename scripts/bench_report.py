"""Writes BENCHMARKS.md from a finished scripts/bench_run.py run (see write_report)."""

import datetime
import os
import platform
import subprocess

PENDING = "not yet measured: needs the pyro_rs Daemon"

# What the analysis of each missed target found (profiles and experiments, kept with the
# generator so every regenerated report carries them, with this run's figures filled in).
# Keyed by target id; each entry takes the run's results.


def _res(b, key, pinned=True):
    c, s, w, n = key
    r = b.results.get((c, s, w, n, pinned))
    return r if r is not None and "median" in r else None


def _us(b, key, pinned=True):
    """Microseconds per call (1e6 / median rate), or None."""
    r = _res(b, key, pinned)
    return 1e6 / r["median"] if r else None


def _rate(b, key, pinned=True):
    r = _res(b, key, pinned)
    return r["median"] if r else None


def _cpu(b, key, pinned=True):
    r = _res(b, key, pinned)
    return r["server_cpu_us_per_call"] if r else None


def _f(x, unit=""):
    return "?" if x is None else (fmt_rate(x) + unit if x >= 100 else f"{x:.1f}{unit}")


def _div(a, b):
    return None if a is None or not b else a / b


RAW = ("rust", "raw", "raw", 1)
LANES = (
    "What was done for the pyro_rs daemon: each connection runs on a lane, a thread with its own "
    "current-thread runtime that does the connection's IO and calls the Python method inline with the "
    "GIL taken for the call (1.0 context switches per call in the daemon, against 4.7 with the earlier "
    "hand-off from an IO thread to a worker pool and back); exposed methods of registered instances are "
    "called from Rust without the Python dispatcher, and current_context is computed from the request "
    "only when read. On the client, the proxy sends its settings and annotations only when they change "
    "(callgrind: 58k -> 46k instructions per ping in the client process)."
)


def note_ping(b):
    p4 = _us(b, ("pyro4", "pyro4-thread", "ping", 1))
    ours = _us(b, ("pyro_rs", "pyro_rs", "ping", 1))
    rr = _us(b, ("rust", "rust", "ping", 1))
    raw = _us(b, RAW)
    budget = _div(p4, 8)
    near_raw = ""
    if rr is not None and raw and rr / raw <= 2:
        near_raw = f", and the Rust pair is itself within the raw-row target ({_f(_div(rr, raw))} raw round trips)"
    if budget is not None and raw is not None and budget < raw:
        floor = (f"the target is below a loopback round trip on this machine, where no implementation can be "
                 f"more than {_f(_div(p4, raw))}x faster than Pyro4. ")
    elif budget is not None and rr is not None and rr >= budget:
        floor = (f"even the Rust pair, with no Python at all, costs more than the {_f(budget, ' us')} the "
                 f"target allows{near_raw}: out of reach on this machine while either end runs Python. ")
    elif budget is not None and rr is not None and rr >= 0.9 * budget:
        floor = (f"the target leaves a pyro_rs pair, which runs a Python proxy call in the client and a Python "
                 f"method in the daemon, about what the Rust pair costs with no Python at all "
                 f"({_f(_div(budget, rr))}x of it){near_raw}: out of reach on this machine while either end "
                 "runs Python. ")
    else:
        floor = (f"the target leaves the Python on both ends "
                 f"{_f(None if budget is None or rr is None else budget - rr, ' us')} per call beyond what the "
                 "Rust pair costs. ")
    return (
        f"Pinned, a Pyro4 <-> Pyro4 ping costs {_f(p4, ' us')}; 8x faster is {_f(budget, ' us')} per call. "
        f"The raw TCP round trip alone (two processes exchanging 32 bytes, no Pyro at all) costs {_f(raw, ' us')} "
        f"here and the Rust client -> Rust daemon ping {_f(rr, ' us')}: " + floor +
        f"pyro_rs <-> pyro_rs costs {_f(ours, ' us')}, {_f(None if ours is None or rr is None else ours - rr, ' us')} "
        "more than Rust <-> Rust: the Python on both ends (the proxy's method lookup and call bookkeeping in "
        "the client, the Python method call in the daemon). Callgrind of the pyro_rs client per ping: 47k "
        "instructions before this run's changes (proxy.__getattr__ 11k, _pyroInvoke's Python 19k, the "
        "native call 14k), 37k after (native RemoteMethod, the per-call settings checks inlined, no "
        "annotation building when there are none), 34k now: Proxy defines __getattr__, so each "
        "self.<name> takes CPython's slow attribute hook (~280 instructions against ~40 for a subscript of "
        "the instance dict, where __getattr__ and _pyroInvoke now read the proxy's state). Left per "
        "ping: the method lookup ~10k, _pyroInvoke's Python ~14k, the native call ~11k (5k of it tokio's "
        "block_on: enter the runtime, park in epoll_wait, wake). strace: one sendto, one recvfrom and one "
        "epoll_wait per call on each side. /proc CPU per ping, pinned: client 31 us user + 18 us system, "
        "daemon 22 + 18; 34k instructions taking 31 us is ~1 instruction per ns: two processes "
        "alternating on one CPU refill caches and predictors at every switch, so fewer instructions buy "
        "less than in a loop. The pyro_rs daemon spends about 17k per ping, 12k of "
        "them in the request (serpent parse of the call 4k, the Python call with its context 5k). What "
        "remains of the client's __getattr__ is CPython 3.11 raising and clearing an AttributeError before "
        "it calls a Python __getattr__. The batch adapter now keeps each method in its instance dict "
        "(its methods hold only the call list); a proxy cannot: its method objects must reach the proxy "
        "(subclass hooks, settings changed at any time), and a proxy <-> method cycle would keep the "
        "proxy, and its connection, alive until a garbage collection instead of closing it when the last "
        "reference goes, as Pyro4 does. " + LANES
    )


def _sys(b, key, pinned=True):
    r = _res(b, key, pinned)
    return r.get("server_sys_us_per_call") if r else None


def note_cpu(b):
    p4 = _cpu(b, ("pyro4", "pyro4-thread", "ping", 1))
    ours = _cpu(b, ("pyro4", "pyro_rs", "ping", 1))
    rust = _cpu(b, ("pyro4", "rust", "ping", 1))
    p4_sys = _sys(b, ("pyro4", "pyro4-thread", "ping", 1))
    ours_sys = _sys(b, ("pyro4", "pyro_rs", "ping", 1))
    rust_sys = _sys(b, ("pyro4", "rust", "ping", 1))
    raw = _us(b, RAW)
    budget = _div(p4, 8)
    text = (
        f"The Pyro4 daemon spends {_f(p4, ' us')} of CPU per call; 1/8 of it is {_f(budget, ' us')}. "
        f"Of each daemon's CPU per call, the kernel's part (system time in /proc/<pid>/stat: the loopback "
        f"recv and send, the poll or epoll wait and the wake-ups) is {_f(p4_sys, ' us')} in the Pyro4 daemon, "
        f"{_f(rust_sys, ' us')} in the Rust daemon and {_f(ours_sys, ' us')} in the pyro_rs daemon. "
        f"The Rust daemon, with no Python behind it, spends {_f(rust, ' us')} per call in all with the same "
        f"Pyro4 client (table below; a whole raw round trip, both ends, is {_f(raw, ' us')}). The pyro_rs "
        f"daemon spends {_f(ours, ' us')}: the Rust daemon's cost plus one Python method call under the GIL. "
    )
    if budget is not None and rust_sys is not None and rust_sys >= 0.8 * budget:
        text += (
            f"The kernel's part alone is {100 * rust_sys / budget:.0f}% of the "
            "target's budget, the same syscalls and wake-ups for any daemon serving this client one request "
            "at a time, so 1/8 would leave the daemon's own work next to nothing: out of reach on this "
            "machine. "
        )
    return text + LANES


def note_echo(w, target):
    def note(b):
        p4 = _us(b, ("pyro4", "pyro4-thread", w, 1))
        ours = _us(b, ("pyro_rs", "pyro_rs", w, 1))
        rr = _us(b, ("rust", "rust", w, 1))
        vs_rust = _us(b, ("pyro_rs", "rust", w, 1))
        text = (
            f"Pinned, Pyro4 <-> Pyro4 takes {_f(p4, ' us')} per echo; {target:.0f}x faster is "
            f"{_f(_div(p4, target), ' us')}. pyro_rs <-> pyro_rs takes {_f(ours, ' us')}; the pyro_rs client "
            f"against the Rust daemon {_f(vs_rust, ' us')}; Rust <-> Rust (no Python objects at all) "
            f"{_f(rr, ' us')}. "
        )
        budget = _div(p4, target)
        if budget is not None and rr is not None and rr > budget:
            text += (
                f"Rust <-> Rust, with no Python object on either side, already needs more than the "
                f"{_f(budget, ' us')} the target allows, so no Python pair can reach it on this machine. "
            )
        if w == "dict":
            ping = _us(b, ("pyro_rs", "pyro_rs", "ping", 1))
            text += (
                f"For a small payload the round trip dominates: a ping without arguments costs {_f(ping, ' us')} "
                "for the same pair, and the serpent work for the dict is a few us per direction (codec table: "
                "pyro_rs.serpent parses it in about 22k instructions and writes it in about 6k, including the "
                "Python objects)."
            )
        elif w == "ints":
            text += (
                "Each echo parses and writes 10,000 ints twice on each side and creates 10,000 Python ints "
                "twice; the pyro_rs.serpent rows below give the per-operation cost of those steps. Neither "
                "pyro_rs end goes through the Value tree for serpent: the client writes the call as serpent "
                "text straight from the Python arguments and parses the reply straight into Python objects "
                "(Pyro4's recreate_classes walk only when the reply holds a `__class__` string): 9.1M -> 4.0M "
                "instructions per echo in the client (callgrind). The daemon reads the target of a plain "
                "serpent call from its first bytes, parses the arguments straight into Python objects the "
                "same way, and writes a builtin result itself: ~9M -> 6.1M -> 4.1M "
                "instructions per echo. A list item of up to seven digits is read as one 64-bit word (SWAR), "
                "not byte by byte (pyro_rs.serpent ints loads 3.0M -> 2.4M). What is left is per int: a "
                "Python int made (PyLong_FromLong) and "
                "read back (PyLong_AsLongAndOverflow), its digits parsed and written, "
                "on each side; and the memory traffic of four 10,000-item lists per echo on one CPU."
            )
        else:
            text += (
                "1 MiB of bytes travels as serpent's base64 dict, as Pyro4 sends it: the client encodes "
                "1.4 MB of base64, the daemon parses it into a Python dict holding a 1.4 MB str (Pyro4's "
                "serpent does not turn it back into bytes) and writes that str back, and the client parses it "
                "again; with the kernel's copies both ways this is memory traffic of a few tens of MB per "
                "echo on one CPU. Done: base64 is SIMD (base64-simd); the 1.4 MB str is found by memchr3 when "
                "parsed and by one range pass plus memchr3 when written, and made by copying its bytes "
                "into a new str (the input, checked all ASCII in the same AVX2 pass that looks for NUL "
                "and CR bytes, needs no UTF-8 pass and no decode by CPython). Also tried: sending the "
                "header with MSG_MORE and the payload from its own buffer, skipping the copy that frames "
                "them together: the kernel then took about three times as long per large sendto (strace "
                "-c, 340 against 115 us), as with a vectored write; reverted. Page faults were the largest cost: "
                "each call allocated about five 1-1.4 MB buffers, and once they were freed glibc gave the "
                "heap top back to the kernel (MADV_DONTNEED, seen with strace), so the next call faulted them "
                "in again: ~1340 minor faults and ~4 ms of kernel time per echo in the pyro_rs daemon (read "
                "from /proc/<pid>/stat), more than all its work. The daemon now decodes the request in place "
                "in its read buffer, frames a large reply in a buffer it keeps per connection, keeps its "
                "reply payload buffer and drops the arguments once they are Python objects; it stays under "
                "glibc's trim threshold and takes 3-8 faults per echo (daemon CPU per echo 5.8 -> 1.8 ms). "
                "Pyro4's daemon still takes ~1700 faults per echo. mimalloc also removed the faults but kept "
                "far more memory (pyro_rs daemon peak RSS at 64 connections 26 -> 169 MiB), so it was taken "
                "out. The pyro_rs client now writes the call straight from the Python bytes into a kept "
                "buffer, frames it in the connection's kept write buffer, and parses the reply where it lies "
                "in the read buffer (no copy of the payload out of it): 5 instead of ~675 faults per echo "
                "once the reply's copies were gone (a first try without that still had two 1.4 MB blocks "
                "live at once on the heap top, which glibc trimmed after every call). A vectored write "
                "(header and payload from separate buffers) was measured too: strace -c showed the kernel "
                "taking about three times as long for it as for one contiguous write of the same megabyte "
                "(daemon system time per echo 0.9-1.4 -> 0.4-0.5 ms with the contiguous one), so the daemon "
                "frames every large reply in its kept buffer and the client does so from 128 KiB (below, it "
                "writes vectored: for the 60 KB ints echo that kept the client's heap top from being trimmed "
                "each call). The daemon now parses the request straight into Python objects (the 1.4 MB str is "
                "made once, from the text). Its result, which went through the Value tree above 120 KiB (a "
                "fresh buffer per call had cost page faults), is now written by the daemon at any size: a "
                "result over 64 KiB keeps the buffer it was written in, the connection keeps that buffer "
                "after sending and hands it back for the next large result (CallContext::take_buffer), "
                "where it is swapped with the thread's writer buffer, so two buffers serve a stream of "
                "large results: 9.8M -> 8.8M instructions per echo in the daemon, 2-4 faults per echo. "
                "Tried and reverted: one reduction pass over a long text finding quotes, backslashes and "
                "newlines together with the range test (in place of the range pass and memchr scans) "
                "compiled to SSE2 at 1.4 instructions per byte, slower than the AVX2 memchr it replaced "
                "(pyro_rs.serpent text dumps 4.16M -> 4.61M). Also tried and reverted: starting an emptied "
                "read buffer again at the front of its memory (once a message is consumed the buffer starts "
                "where it ended, so the next 1.4 MB message runs out of room part way and what has arrived "
                "is moved to the front: ~0.7M of the client's instructions per echo). Without that move the "
                "whole message arrived in one 1.4 MB recvfrom costing ~450 us of kernel time (strace -c) "
                "against two of ~45 us, and Rust <-> Rust bytes echo fell from ~350 to ~290/s. "
                "What remains per echo "
                "is the work itself: base64 of 1 MiB, the 1.4 MB str built and written on each side, and the "
                "kernel's copies (system time is about a third of the CPU per echo on each side)."
            )
        return text
    return note


def note_conn64(b):
    n = b.conc[-1]
    ours = _rate(b, ("rust", "rust", "ping", n))
    raw_n = _rate(b, ("rust", "raw-tokio", "raw", n))
    best = Targets(b).best_pyro4(n)
    p4 = _rate(b, ("pyro4", best, "ping", n))
    need = None if p4 is None else p4 * 15
    verdict = ""
    if need is not None and raw_n is not None:
        verdict = (
            f"The floor, measured in the same run: {n} raw TCP connections echoing 32 bytes on tokio "
            f"(no framing, no codec, the same epoll loop and syscalls per call) reach {_f(raw_n, '/s')}, "
            f"{_f(_div(raw_n, p4))}x the Pyro4 figure, so "
            + ("15x is beyond a raw loopback echo on this machine. " if raw_n < need else
               "15x is below the raw echo: the Pyro work per call is what separates them. ")
        )
    return (
        f"15x the best Pyro4 server is {_f(need, '/s')}, {_f(_div(1e6, need), ' us')} per call for both the "
        f"load generator and the daemon on one CPU; the Rust pair reaches {_f(ours, '/s')}, "
        f"{_f(_div(raw_n, ours))} raw round trips per Pyro call. " + verdict +
        "strace of the daemon shows two syscalls per call, a recvfrom and a sendto (epoll_wait is amortised "
        "over many connections), and the load generator makes the same two: what is left per call is the "
        "loopback TCP stack in the kernel for four syscalls, and Pyro4's protocol has one reply per request, "
        "so replies cannot be batched into fewer writes."
    )


def note_threads64(b):
    n = b.conc[-1]
    rust = _rate(b, ("pyro4", "rust", "ping", n))
    rust_cpu = _cpu(b, ("pyro4", "rust", "ping", n))
    mux = _rate(b, ("pyro4", "pyro4-multiplex", "ping", n))
    rs_rs = _rate(b, ("pyro_rs", "pyro_rs", "ping", n))
    # Pinned, clients and daemon share one CPU: a daemon that cost nothing would leave the
    # clients the Rust daemon's CPU per call too.
    free = None
    if rust and rust_cpu is not None and 1e6 / rust > rust_cpu:
        free = 1e6 / (1e6 / rust - rust_cpu)
    return (
        f"The {n} client threads are Pyro4 proxies in one Python process, and they are the limit: against "
        f"the Rust daemon (no Python at all) the same clients reach {_f(rust, '/s')}, {_f(_div(rust, mux))}x "
        f"the Pyro4 multiplex daemon. Pinned, clients and daemon share one CPU, and the Rust daemon takes "
        f"{_f(rust_cpu, ' us')} of each call's {_f(_div(1e6, rust), ' us')}: a daemon that cost nothing at all "
        f"would let these clients reach {_f(free, '/s')}, {_f(_div(free, mux))}x"
        + (", short of 3x: no daemon can show 3x with these clients on this machine. " if free is not None
           and mux and free < 3 * mux else ". ")
        + f"The same {n} threads as pyro_rs proxies against the pyro_rs daemon reach {_f(rs_rs, '/s')}, "
        f"{_f(_div(rs_rs, mux))}x (row below the table)."
    )


def note_oneway(b):
    vs_rust = _rate(b, ("pyro_rs", "rust", "oneway", 1))
    rr = _rate(b, ("rust", "rust", "oneway", 1))
    return (
        f"Against the Rust daemon (whose oneway method is Rust) the pyro_rs client sends "
        f"{_f(vs_rust, '/s')}, and the Rust client {_f(rr, '/s')}. Every oneway call still runs a Python "
        "proxy call (method lookup, bookkeeping, argument conversion) before its one send: callgrind counts "
        "27.5k instructions per oneway call in the pyro_rs client (29.7k before the proxy read its state "
        "from its instance dict; see ping), about 10k of them the failed attribute lookup and __getattr__ "
        "that make the method object, 12k _pyroInvoke's Python, 5k the native send. The daemon, with "
        "ONEWAY_THREADED (the default, as in Pyro4), decodes the call on the connection's lane (about 20k "
        "instructions per oneway call in all, 5.6k of them the value-tree decode) and hands it to its "
        "worker pool without a reply channel. Found this session: on the thread server every such call "
        "woke an idle worker or, with none idle, started one, so a flood of oneway calls started ~140 "
        "workers (THREADPOOL_SIZE 200) that handed the GIL to each other per call, at ~60% of the "
        "one-worker rate (~25k/s against ~45k/s, pinned). Oneway jobs now wait in their own queue for "
        "the worker already running, which takes them in the same GIL hold; an idle worker takes one "
        "only when none is busy or nothing has started for 1 ms, so blocking oneway calls still run side "
        "by side (tested), and the flood keeps a handful of threads."
    )


def note_batch(b):
    vs_rust = _rate(b, ("pyro_rs", "rust", "batch", 1))
    return (
        f"The pyro_rs client batch against the Rust daemon runs {_f(vs_rust, '/s')}. In the pyro_rs daemon "
        "the 1000 calls run inline on the connection's lane, sharing one current_context state (one "
        "request, as in Pyro4); per call what remains is parsing the call from the serpent batch, converting "
        "the arguments and the result, and the Python call itself: about 10k instructions per call "
        "(callgrind). The pyro_rs client spent 10.9k per batched call, 62% of it in b.name (CPython 3.11 "
        "raising and clearing an AttributeError before the adapter's Python __getattr__, then a new "
        "method object); the adapter now keeps each method in its instance dict: 4.9k."
    )


def note_ns(b):
    raw = _rate(b, RAW)
    p4 = _rate(b, ("pyro4", "pyro4-ns", "lookup", 1))
    ours = _rate(b, ("rust", "rust-ns", "lookup", 1))
    beyond = raw is not None and p4 is not None and raw < 20 * p4
    return (
        f"A lookup is one request and one reply. 20x Pyro4's name server is {_f(None if p4 is None else p4 * 20, '/s')}; "
        f"the raw TCP round trip (no Pyro at all) runs {_f(raw, '/s')} pinned, {_f(_div(raw, p4))}x Pyro4's lookup "
        f"rate, so 20x is " + ("beyond a loopback round trip on this machine. " if beyond else
                               "within a loopback round trip here; the Pyro work per lookup separates them. ")
        + f"The Rust pair runs {_f(ours, '/s')}, "
        f"{_f(_div(raw, ours))} raw round trips per lookup. Callgrind per lookup: the Rust name server about "
        "22k instructions (serpent parse of the call 5k, the lookup and URI 5k), the Rust client 15k (7k of "
        "them parsing the URI reply); strace shows three syscalls per lookup on each side and no thread "
        "hand-off (memory storage answers inline). Unpinned, both pay the cross-CPU wake-up, which "
        "compresses every ratio."
    )


NOTES = {
    "ping": note_ping,
    "cpu": note_cpu,
    "echo-dict": note_echo("dict", 15.0),
    "echo-bytes": note_echo("bytes", 15.0),
    "echo-ints": note_echo("ints", 50.0),
    "conn64": note_conn64,
    "threads64": note_threads64,
    "oneway": note_oneway,
    "batch": note_batch,
    "ns": note_ns,
}


def fmt_rate(r):
    if r >= 100000:
        return "%.0fk" % (r / 1000)
    if r >= 10000:
        return "%.1fk" % (r / 1000)
    if r >= 100:
        return f"{r:.0f}"
    return f"{r:.1f}"


def cell(res, unit="/s"):
    if res is None:
        return "-"
    if res.get("pending"):
        return PENDING
    if "error" in res:
        return "failed: " + res["error"]
    return "{}{} [{}-{}]".format(fmt_rate(res["median"]), unit, fmt_rate(res["min"]), fmt_rate(res["max"]))


def ok(res):
    return res is not None and "median" in res


def ratio_str(x):
    if x is None:
        return "-"
    if x >= 10:
        return f"{x:.0f}x"
    if x >= 1:
        return f"{x:.1f}x"
    return "1/%.1f" % (1 / x) if x > 0 else "0"


class Targets:
    """Target rows: (id, pair, target text, a_key, b_key, metric, direction, threshold, interim)."""

    def __init__(self, b):
        self.b = b

    def get(self, key, pinned):
        c, s, w, n = key
        return self.b.results.get((c, s, w, n, pinned))

    def rows(self):
        n64 = self.b.conc[-1]
        best = self.best_pyro4(n64)
        R = []
        R.append(("raw", "Rust client -> Rust daemon, serpent ping, vs raw Rust TCP 32-byte round trip",
                  "at most 2x the raw round trip", ("rust", "rust", "ping", 1), ("rust", "raw", "raw", 1),
                  "slowdown", 2.0, None))
        R.append(("ping", "pyro_rs client -> pyro_rs daemon vs Pyro4 -> Pyro4, serpent ping", "at least 8x",
                  ("pyro_rs", "pyro_rs", "ping", 1), ("pyro4", "pyro4-thread", "ping", 1), "speedup", 8.0,
                  ("pyro_rs", "rust", "ping", 1)))
        R.append(("cpu", "unchanged Pyro4 client -> pyro_rs daemon vs -> Pyro4 daemon: daemon CPU per call",
                  "at most 1/8", ("pyro4", "pyro_rs", "ping", 1), ("pyro4", "pyro4-thread", "ping", 1), "cpu",
                  1 / 8, ("pyro4", "rust", "ping", 1)))
        for w, t in (("dict", 15.0), ("bytes", 15.0), ("ints", 50.0)):
            label = {"dict": "~10-field dict", "bytes": "1 MiB bytes", "ints": "10k ints"}[w]
            R.append(("echo-" + w, "pyro_rs <-> pyro_rs vs Pyro4 <-> Pyro4, serpent echo of " + label,
                      f"at least {t:.0f}x", ("pyro_rs", "pyro_rs", w, 1), ("pyro4", "pyro4-thread", w, 1),
                      "speedup", t, ("pyro_rs", "rust", w, 1)))
        R.append(("conn64", (f"{n64} connections, Rust load generator -> Rust daemon vs Pyro4 clients -> Pyro4 daemon "
                  f"(best server type: {best.split('-')[1]}), calls/s"), "at least 15x",
                  ("rust", "rust", "ping", n64), ("pyro4", best, "ping", n64), "speedup", 15.0, None))
        R.append(("threads64", f"{n64} Python client threads: pyro_rs daemon vs Pyro4 multiplex daemon, calls/s",
                  "at least 3x", ("pyro4", "pyro_rs", "ping", n64), ("pyro4", "pyro4-multiplex", "ping", n64),
                  "speedup", 3.0, ("pyro4", "rust", "ping", n64)))
        ow = self.best_of(("pyro4", "pyro4-thread", "oneway", 1), ("pyro4", "pyro4-multiplex", "oneway", 1))
        R.append(("oneway", "oneway calls completed per second, pyro_rs daemon vs Pyro4 daemon ({})".format(ow[1].split("-")[1]), "at least 10x", ("pyro_rs", "pyro_rs", "oneway", 1), ow, "speedup",
                  10.0, ("pyro_rs", "rust", "oneway", 1)))
        R.append(("batch", "batch of 1000, pyro_rs vs Pyro4, calls/s", "at least 10x",
                  ("pyro_rs", "pyro_rs", "batch", 1), ("pyro4", "pyro4-thread", "batch", 1), "speedup", 10.0,
                  ("pyro_rs", "rust", "batch", 1)))
        R.append(("ns", "name server lookups/s, Rust client -> Rust NS vs Pyro4 -> Pyro4 NS", "at least 20x",
                  ("rust", "rust-ns", "lookup", 1), ("pyro4", "pyro4-ns", "lookup", 1), "speedup", 20.0, None))
        R.append(("ns-reg", "name server register+remove pairs/s, Rust -> Rust NS vs Pyro4 -> Pyro4 NS",
                  "(no target)", ("rust", "rust-ns", "register", 1), ("pyro4", "pyro4-ns", "register", 1),
                  "speedup", None, None))
        return R

    def best_pyro4(self, n):
        a = self.get(("pyro4", "pyro4-thread", "ping", n), True)
        m = self.get(("pyro4", "pyro4-multiplex", "ping", n), True)
        if ok(m) and (not ok(a) or m["median"] > a["median"]):
            return "pyro4-multiplex"
        return "pyro4-thread"

    def best_of(self, k1, k2):
        a, m = self.get(k1, True), self.get(k2, True)
        if ok(m) and (not ok(a) or m["median"] > a["median"]):
            return k2
        return k1

    def value(self, key, pinned, metric):
        r = self.get(key, pinned)
        if not ok(r):
            return None, cell(r)
        if metric == "cpu":
            return r["server_cpu_us_per_call"], "{:.1f} us CPU/call".format(r["server_cpu_us_per_call"])
        return r["median"], cell(r)

    def ratio(self, a, b, metric):
        if a is None or b is None or a == 0 or b == 0:
            return None
        if metric == "slowdown":
            return b / a  # rates: raw / rust = how many times the raw round trip
        return a / b


def status(x, metric, threshold):
    if x is None or threshold is None:
        return ""
    if metric in ("slowdown", "cpu"):
        return "met" if x <= threshold else "MISSED"
    return "met" if x >= threshold else "MISSED"


def machine_lines(b, args, elapsed):
    def cmd(c):
        try:
            return subprocess.run(c, check=False, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = cmd([b.py, "-c", ("import sys, Pyro4, serpent, pyro_rs; print(sys.version.split()[0], "
                    "Pyro4.__version__, serpent.__version__, pyro_rs.__version__)")]).split()
    versions += ["?"] * (4 - len(versions))
    return [
        "- date: {}".format(datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        f"- machine: {cpu}, {os.cpu_count() or 0} CPUs (`os.cpu_count()`), Linux {platform.release()}",
        "- {}; Python {}; Pyro4 {}; serpent {}; pyro_rs {} ({} build of the extension)".format(cmd(["rustc", "--version"]), versions[0], versions[1], versions[2], versions[3], args.build),
        f"- Rust binaries: `target/{args.build}/pyro-bench`, `pyro-ns` ({args.build} profile)",
        "- mode: {}; {} runs per figure of {:.2f} s each (calls bounded per run too){}; wall time {:.0f} s".format(
            "QUICK smoke run (numbers not meaningful)" if b.quick else "full", b.runs, b.duration,
            (f", taken in {b.rounds} rounds: each round measures every pair once, so both sides of a "
             "ratio are sampled across the same minutes (this machine's speed drifts)") if b.rounds > 1 else "",
            elapsed),
    ]


PINNING = """\
How each side was pinned:

- **pinned**: the server and the client process were each started under `taskset -c 0`,
  so every thread of both ends runs on CPU 0. A round trip then costs the CPU work of both
  ends plus two context switches, with no cross-CPU wake-up: this is the CPU cost per call,
  and the targets are judged on it.
- **unpinned**: no affinity; the scheduler spreads both ends over both CPUs. On these
  machines an idle CPU halts, so a cross-CPU wake-up adds ~100 us per round trip. This is
  what a user sees; it is reported beside the pinned figure.
- Rust processes size their tokio runtime from the CPU affinity (a current-thread runtime when
  pinned); the pyro_rs daemon runs each connection on a thread of its own (its lanes).
- Codec figures are single-process CPU loops, measured pinned to CPU 0; each run of a
  payload and operation is taken for every library in turn before the next run.

Each figure is the median of the runs, with [min-max] beside it. Ratios divide medians.
"""


def write_report(b, args, elapsed):
    T = Targets(b)
    L = ["# Benchmarks", "",
         "Generated by `scripts/bench%s` (do not edit by hand): every pair below ran side by side in "
         "one run on 127.0.0.1." % (" --quick" if b.quick else ""), ""]
    L += machine_lines(b, args, elapsed)
    L += ["", PINNING, "## Targets", "",
          ("| pair | target | pinned: ours | pinned: reference | ratio | unpinned: ours | unpinned: reference "
          "| ratio | status |"),
          "|---|---|---|---|---|---|---|---|---|"]
    missed = []
    interims = []
    for tid, pair, target, ka, kb, metric, thr, interim in T.rows():
        cells = []
        ratios = {}
        for pinned in (True, False):
            a, ta = T.value(ka, pinned, metric)
            bb, tb = T.value(kb, pinned, metric)
            r = T.ratio(a, bb, metric)
            ratios[pinned] = r
            cells += [ta, tb, ratio_str(r)]
        st = status(ratios[True], metric, thr)
        if T.get(ka, True) is not None and T.get(ka, True).get("pending"):
            st = PENDING
        if st == "MISSED":
            missed.append(tid)
        L.append("| {} | {} | {} | {} |".format(pair, target, " | ".join(cells), st))
        if interim is not None:
            interims.append((pair, interim, kb, metric, thr))
    L.append("")
    L.append("Ratios: for rates, ours / reference (higher is better); for the raw row, how many "
             "raw round trips one Pyro call costs; for CPU, ours / reference (lower is better).")
    L.append("")
    if interims:
        L += ["### The same clients against the Rust daemon", "",
              ("The same client against the Rust daemon (`pyro-bench server`) in place of the pyro_rs daemon: "
               "what the Rust core does without a Python object behind it. These are not the target pairs; "
               "they show how much of each figure is the Python side."), "",
              ("| pair (with the Rust daemon) | ours pinned | reference pinned | ratio | ours unpinned | "
              "reference unpinned | ratio |"), "|---|---|---|---|---|---|---|"]
        for pair, ki, kb, metric, _thr in interims:
            cells = []
            for pinned in (True, False):
                a, ta = T.value(ki, pinned, metric)
                bb, tb = T.value(kb, pinned, metric)
                cells += [ta, tb, ratio_str(T.ratio(a, bb, metric))]
            L.append("| {} -> {} ({}) | {} |".format(ki[0], "Rust daemon", pair, " | ".join(cells)))
        L.append("")
    L += extra_rows(b)
    L += codec_section(b, missed)
    L += rss_section(b)
    L += all_rows(b)
    L += notes_section(b, missed)
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")


def extra_rows(b):
    """Pairs beside the targets: the 64-thread row with pyro_rs clients."""
    n = b.conc[-1]
    T = Targets(b)
    ka, kb = ("pyro_rs", "pyro_rs", "ping", n), ("pyro4", "pyro4-multiplex", "ping", n)
    L = ["### The 64-thread row with pyro_rs clients", "",
         (f"{n} Python client threads, each with its own proxy, in one process: pyro_rs proxies against the "
          f"pyro_rs daemon, beside {n} Pyro4 proxies against the Pyro4 multiplex daemon."), "",
         "| pair | ours pinned | reference pinned | ratio | ours unpinned | reference unpinned | ratio |",
         "|---|---|---|---|---|---|---|"]
    cells = []
    for pinned in (True, False):
        a, ta = T.value(ka, pinned, "speedup")
        bb, tb = T.value(kb, pinned, "speedup")
        cells += [ta, tb, ratio_str(T.ratio(a, bb, "speedup"))]
    L.append("| {} pyro_rs threads -> pyro_rs daemon vs {} Pyro4 threads -> Pyro4 multiplex | {} |".format(
        n, n, " | ".join(cells)))
    L.append("")
    return L


def codec_section(b, missed):
    py = {(r["codec"], r["payload"], r["op"]): r for r in b.py_codec}
    rs = {(r["codec"], r["payload"], r["op"]): r for r in b.rs_codec}
    L = ["## Codecs", "",
         "### pyro_rs.serpent vs serpent 1.43 (Python objects in and out)", "",
         ("Payloads: the ~10-field mixed dict, `list(range(10000))`, 1,000,000 characters of ASCII text "
         "with a newline every 57 characters. Instructions per op: `valgrind --tool=callgrind`, "
         "the operation between two `os.getppid()` markers (`--dump-before=getppid`), after a warm-up."), "",
         ("| payload | op | serpent 1.43 ops/s | pyro_rs.serpent ops/s | ratio | target | instr/op serpent "
         "| instr/op pyro_rs | instr ratio | status |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for p in ("dict", "ints", "text"):
        for op in ("dumps", "loads"):
            a, r = py.get(("serpent", p, op)), py.get(("pyro_rs.serpent", p, op))
            sa, sr = summ(a), summ(r)
            ratio = sr["median"] / sa["median"] if sa and sr else None
            target = 50.0 if (op == "loads" and p in ("ints", "text")) else 20.0
            ia = b.instr.get(("python", f"serpent/{p}/{op}"))
            ir = b.instr.get(("python", f"pyro_rs.serpent/{p}/{op}"))
            st = "met" if ratio and ratio >= target else "MISSED"
            if st == "MISSED":
                missed.append(f"codec-{p}-{op}")
            L.append("| {} | {} | {} | {} | {} | {:.0f}x | {} | {} | {} | {} |".format(
                p, op, cell(sa, ""), cell(sr, ""), ratio_str(ratio), target, instr(ia), instr(ir),
                ratio_str(ia / ir) if ia and ir else "-", st))
    L += ["", "### Rust pyro-codec (value model) vs the Python libraries", "",
          ("Rust: `pyro-bench codec` encodes/decodes `pyro_codec::Value`s. Python: serpent 1.43, "
          "and the C-accelerated stdlib `pickle` (highest protocol), `json`, `marshal` on Python objects. "
          "Not the same work (a Value is not a Python object), so read the ratio as a guide."), "",
          "| codec | payload | op | Python ops/s | Rust ops/s | ratio | Rust instr/op |",
          "|---|---|---|---|---|---|---|"]
    for c in ("serpent", "pickle", "json", "marshal"):
        for p in ("dict", "ints", "text"):
            for op in ("dumps", "loads"):
                a, r = summ(py.get((c, p, op))), summ(rs.get((c, p, op)))
                ratio = r["median"] / a["median"] if a and r else None
                L.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                    c, p, op, cell(a, ""), cell(r, ""), ratio_str(ratio),
                    instr(b.instr.get(("rust", f"{c}/{p}/{op}")))))
    L.append("")
    return L


def summ(row):
    if not row:
        return None
    rates = row["runs"]
    s = sorted(rates)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return {"median": med, "min": s[0], "max": s[-1]}


def instr(x):
    if not x:
        return "-"
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e3:
        return "%.1fk" % (x / 1e3)
    return f"{x:.0f}"


def rss_section(b):
    n = b.conc[-1]
    L = [f"## Peak RSS at {n} connections", "",
         (f"A fresh server, pinned, loaded by the Rust load generator with {n} connections pinging; "
         "peak RSS is the server's `VmHWM` after the run."), "",
         "| server | calls/s | peak RSS | vs Rust daemon |", "|---|---|---|---|"]
    rust = b.results.get(("rust", "rust", "ping-rss", n, True))
    for s in ("rust", "pyro4-thread", "pyro4-multiplex", "pyro_rs"):
        r = b.results.get(("rust", s, "ping-rss", n, True))
        if not ok(r):
            L.append(f"| {s} | {cell(r)} | | |")
            continue
        rel = ""
        if ok(rust) and rust["server_rss_kb"]:
            rel = ratio_str(rust["server_rss_kb"] / r["server_rss_kb"]) if s != "rust" else "1"
        L.append("| {} | {} | {:.1f} MiB | Rust = {} of it |".format(s, cell(r), r["server_rss_kb"] / 1024, rel))
    L += ["", "Target: Rust daemon peak RSS at most 1/3 of the Pyro4 daemon's.", ""]
    return L


def all_rows(b):
    L = ["## Every measurement", "",
         ("| client | server | workload | conns | pinned | calls/s median [min-max] | us per call (1 conn) "
         "| server CPU us/call |"), "|---|---|---|---|---|---|---|---|"]
    for (c, s, w, n, pinned), r in b.results.items():
        if w == "ping-rss":
            continue
        us = "%.1f" % (1e6 / r["median"]) if ok(r) and n == 1 and w != "batch" else ""
        cpu = "{:.1f}".format(r["server_cpu_us_per_call"]) if ok(r) and not s.startswith("raw") else ""
        pin = "yes" if pinned else "no"
        L.append(f"| {c} | {s} | {w} | {n} | {pin} | {cell(r)} | {us} | {cpu} |")
    L += ["", ("Workloads: ping = `ping()`; dict/bytes/ints = `echo(x)` of the payload; oneway = `notify()` "
          "sent oneway, rate until the server has run them all (`count()` polled); batch = 1000 `add(i, 1)` "
          "in one batch (rate counts calls); lookup = `ns.lookup(name)`; register = `ns.register` + "
          "`ns.remove`. Clients: rust = `pyro-bench client` (tokio, one Proxy per connection); pyro4 / "
          "pyro_rs = `scripts/bench_py.py client` (one Proxy per thread). Servers: rust = `pyro-bench "
          "server`; pyro4-thread / pyro4-multiplex = Pyro4 4.82 Daemon with SERVERTYPE thread "
          "(THREADPOOL_SIZE 200) / multiplex; rust-ns = `pyro-ns`; pyro4-ns = `python -m Pyro4.naming`."), ""]
    return L


def codec_note(b):
    """What was done for pyro_rs.serpent, and for text loads the run's own budget."""
    text = (
        "What was done: the extension is built for each Python version (not the stable ABI), so a "
        "long ASCII str is made by copying its bytes into a new one-byte str (PyUnicode_New) instead "
        "of having CPython decode them as UTF-8 (PyUnicode_FromStringAndSize's `ascii_decode`), and a "
        "str's UTF-8 is borrowed (PyUnicode_AsUTF8AndSize), never copied into a temporary bytes "
        "object; `pyro_rs.serpent.dumps` is the native function itself (no Python frame before Rust) "
        "and writes a tree of exact builtin types in one pass, falling back to the full Serializer for "
        "anything else; each thread keeps its dumps output buffer (up to 4 MiB) and its parse scratch "
        "(up to 1 MiB), because a fresh megabyte buffer per call cost 460-700 page faults, more than "
        "the work. Parsing: one AVX2 pass over the input finds NUL and CR bytes and whether it is all "
        "ASCII, which also shows it is UTF-8 (otherwise simdutf8 validates it); in a str literal with "
        "escapes the runs between them are copied 32 bytes per step while the same bytes are tested "
        "for the next quote, backslash or newline (AVX2; pyro-codec's one unsafe module, serpent/avx2.rs, "
        "with a portable path tested against it), and the decoded text, checked ASCII in one more "
        "pass, goes to the builder as such, so the 1 MB str is one copy. Compact int items take one "
        "tight loop, up to seven digits read as one 64-bit word (ints loads 4.2M -> 1.7M instructions). "
        "Writing: ints eight digits per step inside the list loop (ints dumps 2.3M -> 1.4M), and long "
        "printable text is one vectorized range pass plus memchr3 between escapes (text dumps 5.8M -> "
        "4.0M). Small documents: whitespace skipping returns at once on a printable byte, short "
        "literals are scanned two words at a time, short strs (up to 16 bytes) come from a per-thread "
        "cache by content so repeated dict keys are neither made nor hashed again, floats take their "
        "digits from zmij instead of core::fmt (which also fixed ties: CPython picks the even last "
        "digit, Rust's {:e} the odd one, 1 in ~3,000 random doubles), the nesting limit is read with "
        "Py_GetRecursionLimit, dicts, lists and tuples are walked on borrowed references (the collector "
        "is paused while the writer runs, which runs no Python code, so nothing can change a container "
        "mid-walk), a short plain str is tested a word at a time and quoted through a fixed-size block, "
        "and the reprs of str dict keys are kept per thread by object (256 slots, each holding its "
        "str): dict loads 28.3k -> 22.0k, dict dumps 10.8k -> 5.9k instructions. Callgrind counts a "
        "large copy (`rep movsb` in memcpy) as one instruction per byte, so for the 1 MB text the "
        "instruction ratio understates the time ratio. Tried for text loads: the AVX2 run search alone "
        "(runs still copied by push_str): 95 -> 61 instructions per line and no change in time; the "
        "time went down as whole passes over the megabyte went away (input check 3 passes -> 1, "
        "UTF-8 check plus ASCII check of the decoded text 2 -> 1, decode then copy into the str "
        "instead of decode, then CPython's decode).")
    py = {(r["codec"], r["payload"], r["op"]): r for r in b.py_codec}
    sa, sr = summ(py.get(("serpent", "text", "loads"))), summ(py.get(("pyro_rs.serpent", "text", "loads")))
    if sa and sr and sr["median"] < 50 * sa["median"]:
        text += (
            " Text loads in this run: serpent 1.43 takes {:.0f} us per op, so 50x is {:.0f} us; "
            "pyro_rs.serpent takes {:.0f} us. A 1 MB literal is now a few passes over the text: the "
            "input check, the decode (read the input, write the text), the ASCII check and the copy "
            "into the str, about 20 us each here (reading or writing a megabyte that is not in the "
            "CPU's cache), plus the 17,500 escapes of this text (one per 57-byte line).").format(
                1e6 / sa["median"], 1e6 / sa["median"] / 50, 1e6 / sr["median"])
    return text


def notes_section(b, missed):
    L = ["## Where the time goes", ""]
    for tid in missed:
        if tid in NOTES:
            L += [f"### {tid}", "", NOTES[tid](b), ""]
    prof = [(k, v) for k, v in b.profiles.items() if v and k[0] == "python" and k[1].startswith("pyro_rs")]
    codec_missed = [m for m in missed if m.startswith("codec-")]
    if prof and codec_missed:
        L += ["### pyro_rs.serpent rows", "", codec_note(b), "",
              ("callgrind profile inside the native calls (self instructions per function, share of the "
              "native part; the rest of each op is the Python side of the call):"), ""]
        for m in codec_missed:
            _, p, op = m.split("-")
            top = b.profiles.get(("python", f"pyro_rs.serpent/{p}/{op}"), [])
            if not top:
                continue
            L.append(f"- {p} {op}: " + "; ".join(f"{pct} {short(fn)} ({instr(n)})"
                                                          for n, pct, fn in top[:5]))
        L.append("")
    if not missed:
        L.append("Every measured target is met.")
    return L


def short(fn):
    return f"`{fn[:80]}`"
