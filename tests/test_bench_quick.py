"""The scale benchmark at a tiny size, so it cannot rot. Speed is the benchmark's business, not this test's:
nothing here depends on timings."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_at_a_tiny_size_and_its_correctness_checks_pass():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick"], cwd=str(ROOT),
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "correctness: PASS" in output, output
    assert "Traceback" not in output, output
