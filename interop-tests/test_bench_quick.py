"""scripts/bench --quick runs end to end and writes a report (no timing is asserted)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_writes_report(tmp_path):
    out = tmp_path / "BENCHMARKS-quick.md"
    r = subprocess.run(
        [os.path.join(ROOT, "scripts", "bench"), "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    # The report carries the pinning note, the target table and every section.
    for needle in ("# Benchmarks", "taskset -c 0", "## Targets", "## Codecs", "## Peak RSS",
                   "## Every measurement", "raw Rust TCP 32-byte round trip"):
        assert needle in text, needle
    # Rows measured by Rust and Python peers came back with numbers, not failures.
    assert "failed:" not in text, [line for line in text.splitlines() if "failed:" in line]
    assert "| rust | rust | ping | 1 | yes |" in text
    assert "| pyro4 | pyro4-thread | ping | 1 | yes |" in text
    assert sys.executable  # the bench uses the .venv of scripts/test, not this interpreter
