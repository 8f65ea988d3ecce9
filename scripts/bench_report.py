"""Writes BENCHMARKS.md from a finished scripts/bench_run.py run (see write_report)."""

import datetime
import os
import platform
import subprocess

PENDING = "not yet measured: needs the pyro_rs Daemon"

# What the analysis of each missed target found (profiles and experiments, kept with the
# generator so every regenerated report carries them). Keyed by target id.
NOTES = {
    "ping": (
        "The pyro_rs client is not the limit: the same pyro_rs client against the Rust daemon "
        "(table below) runs several times faster than against the pyro_rs daemon. The pyro_rs daemon "
        "pays per call for handing the request from its tokio task to a Python thread, taking the GIL, "
        "converting arguments, calling the Python method and handing the result back (two thread "
        "switches per call on one CPU). Its server CPU per call is in the CPU row. The Rust side of the "
        "pair (client, wire, codec) is what the Rust-daemon row shows; the rest is the pyro_rs daemon's "
        "dispatch path (python-bindings), where the next work belongs: run the Python call on the "
        "connection's thread with the GIL taken once per request, not via a pool hand-off."
    ),
    "cpu": (
        "Daemon CPU per call includes the kernel work of one end of a loopback round trip (recv, send, "
        "epoll, the wake-up): the raw TCP row shows a whole round trip, both ends, costs about "
        "1e6/raw-rate us pinned, so one end alone is about half of it. The Rust daemon (table below) "
        "sits within a few us of that floor; the 1/8 target needs the Pyro4 figure divided by 8, which "
        "is below what one end of a loopback round trip costs on this machine plus the Python call the "
        "pyro_rs daemon has to make. The pyro_rs daemon's extra cost over the Rust daemon is the Python "
        "dispatch described for the ping row."
    ),
    "echo-dict": (
        "Against the Rust daemon the same pyro_rs client reaches a much higher ratio (table below): "
        "the gap is the pyro_rs daemon's per-call Python dispatch. Codec cost for this payload is a few "
        "us per direction (see the codec table), small next to the round trip."
    ),
    "echo-bytes": (
        "1 MiB bytes travel as serpent's base64 dict (Pyro4's format): 1.4 MB of base64 each way plus "
        "the Python bytes <-> base64 text conversion on both ends, then the copies through the socket. "
        "Both ends are memory-bound here; the pinned figure puts client and server (and the kernel's "
        "copies) on one CPU."
    ),
    "echo-ints": (
        "10k ints: serpent 1.43 parses with ast.literal_eval, which the Rust parser replaces "
        "(see the loads row of the codec table); the remaining cost is creating 10k Python ints on each "
        "side and the pyro_rs.serpent dumps (see its profile below)."
    ),
    "conn64": (
        "With one CPU for both the 64-connection load generator and the daemon, the Rust pair is bound "
        "by per-message syscalls (a read and a write per call on each side): 64 connections only "
        "amortise the wake-ups. The Pyro4 side is bound by the GIL in one process. The ratio is the "
        "syscall floor against Python's per-call cost; batching several replies per write would be the "
        "next step (not done: Pyro4's protocol has one reply per request)."
    ),
    "threads64": (
        "64 Python client threads in one Pyro4 process: the clients themselves (GIL-bound Pyro4 "
        "proxies) are the limit for both servers, so the daemon's speed shows only partly. "
        "The Rust-daemon row below has the same clients."
    ),
    "oneway": (
        "Against the Rust daemon the same client completes oneway calls much faster (table below): the "
        "pyro_rs daemon runs each oneway Python method through its Python dispatch; the client side "
        "sends without waiting."
    ),
    "batch": (
        "The batch is one request carrying 1000 calls; the pyro_rs daemon runs them as 1000 Python "
        "calls through its dispatch path, one hand-off each, so the batch gains nothing over Pyro4's "
        "in-process loop. Against the Rust daemon the same pyro_rs client batch is >10x Pyro4 (table "
        "below). The fix belongs in the pyro_rs daemon: run a whole batch in one GIL hold."
    ),
    "ns": (
        "A lookup is a full Pyro call (the name server object's lookup) plus a URI in the reply. "
        "Pinned, the Rust pair costs about two raw round trips; Pyro4's name server is a Pyro4 "
        "thread-pool daemon, so the ratio is about that of the ping rows. Unpinned, both pay the "
        "cross-CPU wake-up, which compresses every ratio."
    ),
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
        "- mode: {}; {} runs per figure of {:.2f} s each (calls bounded per run too); wall time {:.0f} s".format(
            "QUICK smoke run (numbers not meaningful)" if b.quick else "full", b.runs, b.duration, elapsed),
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
- Rust processes size their tokio runtime from the CPU affinity (one worker when pinned).
- Codec figures are single-process CPU loops, measured pinned to CPU 0.

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
               "what the Rust core does without a Python object behind it (the stand-in while the pyro_rs "
               "Daemon was missing). These are not the target pairs."), "",
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
    L += codec_section(b, missed)
    L += rss_section(b)
    L += all_rows(b)
    L += notes_section(b, missed)
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")


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
        cpu = "{:.1f}".format(r["server_cpu_us_per_call"]) if ok(r) and s != "raw" else ""
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


CODEC_NOTE = (
    "What was done: the encoder and parser scan strings eight bytes at a time (SWAR) instead of "
    "byte by byte, ints are printed two digits per division, and `pyro_rs.serpent.dumps` writes a "
    "tree of exact builtin types in one native call (no Serializer object, no per-container "
    "callback) with a fallback to the full Serializer for anything else. What remains: the extension "
    "is built for the abi3-py39 stable ABI, where a str's UTF-8 cannot be borrowed, so every str is "
    "encoded to a temporary bytes object (PyUnicode_AsUTF8String: malloc + copy) before it is "
    "escaped, and a built str is decoded again (PyUnicode_FromStringAndSize); per int and per "
    "container item each of PyLong_AsLong, Py_IncRef and Py_DecRef is an out-of-line call under the "
    "stable ABI. The 1 MB text rows are memory-bound: ~1 MB is read, escaped/unescaped and "
    "written, then copied into the result object, against serpent 1.43's C-level repr(); loads of "
    "text is bounded by the copy into a String plus the UTF-8 decode into a Python str. "
    "Next steps: a Python >= 3.10 (abi3-py310) build to borrow UTF-8 directly "
    "(PyUnicode_AsUTF8AndSize), and writing the result straight into a bytes object."
)


def notes_section(b, missed):
    L = ["## Where the time goes", ""]
    for tid in missed:
        if tid in NOTES:
            L += [f"### {tid}", "", NOTES[tid], ""]
    prof = [(k, v) for k, v in b.profiles.items() if v and k[0] == "python" and k[1].startswith("pyro_rs")]
    codec_missed = [m for m in missed if m.startswith("codec-")]
    if prof and codec_missed:
        L += ["### pyro_rs.serpent rows", "", CODEC_NOTE, "",
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
