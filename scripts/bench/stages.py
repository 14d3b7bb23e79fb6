"""Per-stage single-core throughput of pipeline-cli's CSV -> JSON-lines path,
measured end to end with product flags only (no bench hooks in the binary).

pipeline-cli runs with --csv-threads 1, so each stage is one named thread:
`source` cuts the file into chunks at row ends (reading included),
`csv-parse-0` parses each chunk's rows and encodes them as JSON lines (one
pass: on this path rows never become records, so parsing and encoding are
not separable), `sink-0` writes the lines to the output file. While it runs
the harness reads each thread's CPU time from /proc/PID/task/TID/schedstat
(nanoseconds on a CPU) every POLL seconds, keeping the last value seen; a
thread's last POLL before it exits may be missed, so the report also gives
how much of the process's CPU time (os.wait4) the polled threads account
for. A stage's MB/s is the input's bytes over its thread's CPU seconds: what
one core doing only that stage would keep up with. The median of
BENCH_STAGE_RUNS runs is reported.

The 1-thread vs 2-thread line is the wall time of --csv-threads 1 against
--csv-threads 2 (runs alternated, medians), timed without the polling.
"""

import os
import statistics
import subprocess
import time
from pathlib import Path

from . import common
from .common import BIN

POLL = 0.002


def _cpu_by_thread(pid, seen):
    task = Path(f"/proc/{pid}/task")
    try:
        tids = os.listdir(task)
    except FileNotFoundError:
        return
    for tid in tids:
        try:
            name = (task / tid / "comm").read_text().strip()
            ns = int((task / tid / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        seen[(tid, name)] = ns


def _command(csv, output, threads):
    return (f"{BIN} --source-type csv --csv-file {csv} --sink-type file --output-file {output} "
            f"--quiet --csv-threads {threads}")  # fmt: skip


def _polled_run(csv, output):
    """({thread name: CPU s}, the process's CPU s) of one --csv-threads 1 run."""
    cmd = _command(csv, output, 1).split()
    seen = {}
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        _cpu_by_thread(child.pid, seen)
        time.sleep(POLL)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stages: {' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    by_name = {}
    for (_, name), ns in seen.items():
        by_name[name] = by_name.get(name, 0.0) + ns / 1e9
    return by_name, usage.ru_utime + usage.ru_stime


STAGES = [
    ("cutter (read, find row ends)", "source"),
    ("parser + encoder (rows -> JSON lines)", "csv-parse-0"),
    ("writer (lines -> file)", "sink-0"),
]


def measure(csv, input_bytes, output, runs):
    """Per-stage MB/s and the 1- vs 2-thread wall times; a dict for the report."""
    cpu = {thread: [] for _, thread in STAGES}
    covered = []
    for _ in range(runs):
        by_name, total = _polled_run(csv, output)
        for _, thread in STAGES:
            cpu[thread].append(by_name.get(thread, 0.0))
        covered.append(sum(by_name.values()) / total * 100 if total > 0 else 0.0)
    walls = {1: [], 2: []}
    for i in range(runs):
        for threads in ([1, 2] if i % 2 == 0 else [2, 1]):
            rc, wall, _, _ = common.measure(_command(csv, output, threads))
            if rc != 0:
                raise SystemExit(f"stages: {_command(csv, output, threads)} exited {rc}")
            walls[threads].append(wall)
    stages = []
    for label, thread in STAGES:
        s = statistics.median(cpu[thread])
        stages.append({"stage": label, "thread": thread, "cpu_s": s,
                       "mb_s": input_bytes / 1e6 / s if s > 0 else None})  # fmt: skip
    return {
        "stages": stages,
        "wall_1": statistics.median(walls[1]),
        "wall_2": statistics.median(walls[2]),
        "runs": runs,
        "poll_ms": POLL * 1000,
        "covered_pct": statistics.median(covered),
    }


def report(facts, input_bytes):
    """Prints the stages section of the CSV report."""
    print(f"\n## Stages, one core each (--csv-threads 1, median of {facts['runs']} runs)\n")
    print("| stage | thread | CPU s | MB/s on one core |")
    print("|---|---|---|---|")
    for s in facts["stages"]:
        mb = f"{s['mb_s']:.1f}" if s["mb_s"] else "-"
        print(f"| {s['stage']} | {s['thread']} | {s['cpu_s']:.3f} | {mb} |")
    w1, w2 = facts["wall_1"], facts["wall_2"]
    mb = input_bytes / 1e6
    print(f"\n- --csv-threads 1: {w1:.3f} s ({mb / w1:.1f} MB/s); --csv-threads 2: {w2:.3f} s "
          f"({mb / w2:.1f} MB/s); 2 threads are {w1 / w2:.2f}x as fast")  # fmt: skip
    print(f"- CPU time per thread from /proc/PID/task/*/schedstat, polled every {facts['poll_ms']:.0f} ms "
          "(a thread's last interval before it exits may be missed; the polled threads account "
          f"for {facts['covered_pct']:.0f} % of the process's CPU time, median); parsing and encoding are one pass "
          "on this path, so they are one stage")  # fmt: skip
