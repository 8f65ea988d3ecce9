"""scripts/bench's orchestrator: starts every server on 127.0.0.1, runs each pair side by side
(pinned with `taskset -c 0` on both ends, then unpinned), collects callgrind instruction
counts for the codecs and writes BENCHMARKS.md.

Run through scripts/bench, which builds the binaries and the venv; this file uses only the
standard library and drives:
  pyro-bench (Rust daemon, load generator, raw TCP floor, codecs), pyro-ns (Rust name server),
  bench_py.py (Pyro4 and pyro_rs servers, clients and codec loops), python -m Pyro4.naming.
"""

import argparse
import glob
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_PY = os.path.join(HERE, "bench_py.py")


class Bench:
    def __init__(self, args):
        self.a = args
        self.py = args.python
        self.rbench = os.path.join(args.bindir, "pyro-bench")
        self.rns = os.path.join(args.bindir, "pyro-ns")
        self.quick = args.quick
        self.runs = 5
        # Machine speed drifts by tens of percent over minutes here: a full run measures
        # every pair once per round (one run each), so the runs of both sides of a ratio
        # are spread over the same minutes instead of taken back to back.
        self.rounds = 1 if self.quick else self.runs
        self.round = 0
        self.round_done = set()
        self.acc = {}  # key -> runs, calls and server CPU gathered over the rounds
        self.duration = 0.03 if self.quick else 0.4
        self.codec_duration = 0.01 if self.quick else 0.15
        self.results = {}  # (client, server, workload, conns, pinned) -> result dict
        self.servers = {}  # (server, pinned) -> (proc, uri)
        self.procs = []
        self.has_pyro_rs_daemon = self.probe_pyro_rs_daemon()
        # Connection counts; the last is the "64 connections" of the targets.
        self.conc = [1, 4] if self.quick else [1, 4, 16, 64]
        self.log_lines = []

    def log(self, msg):
        print("[bench] " + msg, file=sys.stderr, flush=True)

    # ---- processes ---------------------------------------------------------------------

    @staticmethod
    def pin(cmd, pinned):
        return (["taskset", "-c", "0"] + cmd) if pinned else cmd

    def probe_pyro_rs_daemon(self):
        r = subprocess.run([self.py, "-c", "import pyro_rs, sys; sys.exit(0 if hasattr(pyro_rs, 'Daemon') else 1)"],
                           check=False, capture_output=True)
        return r.returncode == 0

    def spawn_first_line(self, cmd, pinned, timeout=20):
        p = subprocess.Popen(self.pin(cmd, pinned), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.procs.append(p)
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.1)
            if ready:
                line = p.stdout.readline().strip()
                if line:
                    return p, line
            if p.poll() is not None:
                raise RuntimeError("server exited: {}".format(" ".join(cmd)))
        raise RuntimeError("server did not start: {}".format(" ".join(cmd)))

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)
        self.procs = []
        self.servers = {}

    def server_cmd(self, kind):
        if kind == "rust":
            return [self.rbench, "server"]
        if kind in ("pyro4-thread", "pyro4-multiplex"):
            return [self.py, BENCH_PY, "server", "--impl", "pyro4", "--servertype", kind.split("-")[1]]
        if kind == "pyro_rs":
            return [self.py, BENCH_PY, "server", "--impl", "pyro_rs", "--servertype", "thread"]
        raise ValueError(kind)

    def server(self, kind, pinned, fresh=False):
        key = (kind, pinned)
        if fresh or key not in self.servers:
            if kind in ("rust-ns", "pyro4-ns"):
                port = free_port()
                cmd = ([self.rns] if kind == "rust-ns" else [self.py, "-m", "Pyro4.naming"]) + [
                    "-n", "127.0.0.1", "-p", str(port), "-x"]
                p = subprocess.Popen(self.pin(cmd, pinned), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                self.procs.append(p)
                wait_port(port, p)
                uri = f"PYRO:Pyro.NameServer@127.0.0.1:{port}"
            else:
                p, uri = self.spawn_first_line(self.server_cmd(kind), pinned)
            if fresh:
                return p, uri
            self.servers[key] = (p, uri)
        return self.servers[key]

    def client_cmd(self, client, uri, workload, conns, shape):
        if client == "rust":
            if workload in ("lookup", "register"):
                return [self.rbench, "ns", "--uri", uri, "--op", workload] + shape
            return [self.rbench, "client", "--uri", uri, "--workload", workload, "--conns", str(conns)] + shape
        impl = "pyro_rs" if client == "pyro_rs" else "pyro4"
        if workload in ("lookup", "register"):
            return [self.py, BENCH_PY, "ns", "--impl", impl, "--uri", uri, "--op", workload] + shape
        return [self.py, BENCH_PY, "client", "--impl", impl, "--uri", uri, "--workload", workload,
                "--conns", str(conns)] + shape

    def shape(self, workload, runs=None):
        max_calls = 200000 if workload not in ("bytes",) else 2000
        runs = runs if runs is not None else self.runs // self.rounds
        return ["--runs", str(runs), "--duration", str(self.duration), "--max-calls", str(max_calls)]

    def run_json(self, cmd, pinned, timeout=120):
        r = subprocess.run(self.pin(cmd, pinned), check=False, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("failed ({}): {}\n{}".format(r.returncode, " ".join(cmd), r.stderr[-2000:]))
        return json.loads(r.stdout.strip().splitlines()[-1])

    # ---- measurements ------------------------------------------------------------------

    def needs_pyro_rs_daemon(self, client, server):
        return (server == "pyro_rs") and not self.has_pyro_rs_daemon

    def measure(self, client, server, workload, conns, pinned):
        """One invocation of this pair in the current round; its runs, calls and the
        server's CPU are added to the pair's totals (see finalize)."""
        key = (client, server, workload, conns, pinned)
        # ping-rss: a ping load on a freshly started server, for its peak RSS.
        fresh = workload == "ping-rss"
        workload = "ping" if fresh else workload
        if key in self.results or key in self.round_done:
            return
        self.round_done.add(key)
        acc = self.acc.setdefault(key, {"runs": [], "calls": 0, "cpu": 0.0, "rss": 0})
        if "error" in acc or "pending" in acc:
            return
        if self.needs_pyro_rs_daemon(client, server):
            acc["pending"] = True
            return
        runs = self.runs if fresh else None
        label = "{} -> {} {} x{} {}".format(client, server, workload, conns, "pinned" if pinned else "unpinned")
        if self.rounds > 1 and not fresh:
            label += f" (round {self.round + 1}/{self.rounds})"
        self.log(label)
        try:
            if server in ("raw", "raw-tokio"):
                p, addr = self.server_kind_raw(pinned, server == "raw-tokio")
                cmd = [self.rbench, "raw-client", "--addr", addr, "--conns", str(conns)] + self.shape("raw", runs)
            else:
                p, uri = self.server(server, pinned, fresh=fresh)
                cmd = self.client_cmd(client, uri, workload, conns, self.shape(workload, runs))
            cpu0 = cpu_seconds(p.pid)
            sys0 = cpu_seconds(p.pid, system_only=True)
            out = self.run_json(cmd, pinned)
            cpu1 = cpu_seconds(p.pid)
            sys1 = cpu_seconds(p.pid, system_only=True)
            acc["runs"] += out["runs"]
            acc["calls"] += out["total_calls"]
            acc["cpu"] += cpu1 - cpu0
            acc["sys"] = acc.get("sys", 0.0) + sys1 - sys0
            acc["rss"] = rss_hwm_kb(p.pid)
            if fresh:
                self.stop(p)
        except Exception as e:  # noqa: BLE001 - a failed row is reported, the rest still runs
            self.log(f"FAILED: {e}")
            acc["error"] = str(e).splitlines()[0][:200]

    def finalize(self):
        """Turn the totals gathered so far into results: median and range of the runs,
        server CPU per call over all of them."""
        for key, acc in self.acc.items():
            if key in self.results:
                continue
            if acc.get("pending"):
                self.results[key] = {"pending": True}
            elif "error" in acc or not acc["runs"]:
                self.results[key] = {"error": acc.get("error", "no runs")}
            else:
                res = summarize(acc["runs"])
                res["server_cpu_us_per_call"] = acc["cpu"] / max(1, acc["calls"]) * 1e6
                res["server_sys_us_per_call"] = acc.get("sys", 0.0) / max(1, acc["calls"]) * 1e6
                res["server_rss_kb"] = acc["rss"]
                self.results[key] = res

    def server_kind_raw(self, pinned, tokio=False):
        # The thread-per-connection echo is the one-connection floor; the tokio one (epoll,
        # as the Rust daemon serves) is the floor for many connections.
        key = ("raw-tokio" if tokio else "raw", pinned)
        if key not in self.servers:
            self.servers[key] = self.spawn_first_line(
                [self.rbench, "raw-server"] + (["--tokio"] if tokio else []), pinned)
        return self.servers[key]

    def pass_(self, pinned):
        for r in range(self.rounds):
            self.round = r
            self.round_done = set()
            self.pass_round(pinned)
        self.finalize()
        self.stop_all()

    def pass_round(self, pinned):
        conc = self.conc
        m = self.measure
        m("rust", "raw", "raw", 1, pinned)
        m("rust", "raw-tokio", "raw", conc[-1], pinned)
        for c, s in [("rust", "rust"), ("pyro4", "pyro4-thread"), ("pyro4", "pyro4-multiplex"),
                     ("pyro_rs", "pyro_rs"), ("pyro_rs", "rust"), ("pyro4", "rust"), ("pyro4", "pyro_rs")]:
            m(c, s, "ping", 1, pinned)
        for w in ("dict", "bytes", "ints"):
            for c, s in [("pyro4", "pyro4-thread"), ("pyro_rs", "pyro_rs"), ("pyro_rs", "rust"), ("rust", "rust")]:
                m(c, s, w, 1, pinned)
        for n in conc:
            for c, s in [("rust", "rust"), ("pyro4", "pyro4-thread"), ("pyro4", "pyro4-multiplex"),
                         ("pyro4", "pyro_rs"), ("pyro4", "rust"), ("pyro_rs", "pyro_rs")]:
                m(c, s, "ping", n, pinned)
        for c, s in [("pyro4", "pyro4-thread"), ("pyro4", "pyro4-multiplex"), ("pyro_rs", "pyro_rs"),
                     ("pyro_rs", "rust"), ("rust", "rust")]:
            m(c, s, "oneway", 1, pinned)
        for c, s in [("pyro4", "pyro4-thread"), ("pyro_rs", "pyro_rs"), ("pyro_rs", "rust"), ("rust", "rust")]:
            m(c, s, "batch", 1, pinned)
        for op in ("lookup", "register"):
            for c, s in [("rust", "rust-ns"), ("pyro4", "pyro4-ns"), ("pyro_rs", "rust-ns")]:
                m(c, s, op, 1, pinned)

    def rss_pass(self):
        n = self.conc[-1]
        self.round_done = set()
        for s in ("rust", "pyro4-thread", "pyro4-multiplex", "pyro_rs"):
            self.measure("rust", s, "ping-rss", n, True)
        self.finalize()

    def codecs(self):
        shape = ["--runs", str(self.runs), "--duration", str(self.codec_duration), "--max-calls", "1000000"]
        self.log("codecs (python)")
        self.py_codec = self.run_json([self.py, BENCH_PY, "codec"] + shape, True, timeout=600)["rows"]
        self.log("codecs (rust)")
        self.rs_codec = self.run_json([self.rbench, "codec"] + shape, True, timeout=600)["rows"]
        self.instr = {}
        self.profiles = {}
        if self.quick or not shutil.which("valgrind"):
            return
        self.log("callgrind (rust codecs)")
        self.callgrind([self.rbench, "codec-marks", "--iters", "2"], "rust")
        self.log("callgrind (python serpent, pyro_rs.serpent)")
        self.callgrind([self.py, BENCH_PY, "codec-marks", "--iters", "1", "--only", "serpent,pyro_rs.serpent"],
                       "python")
        self.log("callgrind profiles (pyro_rs.serpent, inside the native calls)")
        for p in ("dict", "ints", "text"):
            for op in ("dumps", "loads"):
                self.profiles[("python", f"pyro_rs.serpent/{p}/{op}")] = self.native_profile(p, op)

    def native_profile(self, payload, op):
        """Self-cost top functions inside pyro_rs's native serpent calls for one operation."""
        d = tempfile.mkdtemp(prefix="bench-cg-")
        try:
            out = os.path.join(d, "cg.out")
            subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                            "--toggle-collect=*serpent_dumps_builtin*", "--toggle-collect=*serpent_parse*",
                            "--callgrind-out-file=" + out, self.py, BENCH_PY, "codec-marks", "--iters", "10",
                            "--only", "pyro_rs.serpent", "--op-filter", f"{payload}/{op}"],
                           check=False, capture_output=True, text=True, timeout=600)
            return top_functions(out) if os.path.exists(out) else []
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def callgrind(self, cmd, side):
        d = tempfile.mkdtemp(prefix="bench-cg-")
        try:
            r = subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=getppid",
                                "--callgrind-out-file=" + os.path.join(d, "cg.%p")] + cmd,
                               check=False, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                self.log(f"callgrind failed: {r.stderr[-500:]}")
                return
            meta = json.loads(r.stdout.strip().splitlines()[-1])
            files = sorted(glob.glob(os.path.join(d, "cg.*.*")), key=lambda f: int(f.rsplit(".", 1)[1]))
            # Dump 1 is start-up; dump k+1 holds segment k.
            iters = meta["iters"]
            if not isinstance(iters, list):
                iters = [iters] * len(meta["segments"])
            for seg, n, f in zip(meta["segments"], iters, files[1:]):
                self.instr[(side, seg)] = total_instructions(f) / n
        finally:
            shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("name server exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("name server did not start")


def cpu_seconds(pid, system_only=False):
    """CPU time of a process so far (user + system, or system only), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user = 0 if system_only else int(fields[11])
        return (user + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def rss_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def summarize(rates):
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": rates}


def total_instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return 0


def top_functions(path, n=6):
    """[(instructions, percent, function)] by self cost, from callgrind_annotate."""
    if not shutil.which("callgrind_annotate"):
        return []
    r = subprocess.run(["callgrind_annotate", path], check=False, capture_output=True, text=True)
    total = 0
    by_fn = {}
    # Only the flat self-cost table: from the "file:function" header to the next rule.
    in_table = False
    for line in r.stdout.splitlines():
        if line.rstrip().endswith("file:function"):
            in_table = True
            continue
        if in_table and line.startswith("---") and by_fn:
            break
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)", line)
        if not m or not (in_table or "PROGRAM TOTALS" in line):
            continue
        count = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
            continue
        # "file:function [object]": inlined code is listed once per source file; sum it.
        fn = m.group(3).split(" [")[0]
        fn = fn.split(":", 1)[1] if ":" in fn else fn
        by_fn[fn] = by_fn.get(fn, 0) + count
    top = sorted(by_fn.items(), key=lambda kv: -kv[1])[:n]
    return [(c, f"{100 * c / total:.0f}%" if total else "?", fn) for fn, c in top]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default="release")
    args = ap.parse_args()
    b = Bench(args)
    t0 = time.time()
    try:
        b.pass_(True)
        if not b.quick:
            b.pass_(False)
        b.rss_pass()
        b.codecs()
    finally:
        b.stop_all()
    from bench_report import write_report

    write_report(b, args, time.time() - t0)
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
