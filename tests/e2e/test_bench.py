"""The benchmark's CPU meter, on real pool processes."""

import subprocess
import sys

from tori_ingest.bench import stages


def test_cpu_meter_counts_pool_processes_that_already_exited() -> None:
    """A recycled pool process's CPU still counts (its reaper's children times), and the
    service's own process is apart from it: a negative or missing pool share would make
    `pool_share_of_cpu` lie."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    parent = (
        "import subprocess, sys\n"
        "sys.stdin.readline()\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}], check=True)\n"
        "print('done', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        meter = stages.CpuMeter(proc.pid, None)
        before = meter.snapshot()
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
        figures = meter.per_job(before, 1)
    finally:
        proc.communicate("")
    assert figures["cpu_ms_per_job"]["pool"] >= 250  # the child had exited and was reaped
    assert figures["cpu_ms_per_job"]["service_process"] < 250
    assert "postgres" not in figures["cpu_ms_per_job"]
    assert 0.5 < figures["pool_share_of_cpu"] <= 1
