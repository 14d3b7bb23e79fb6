"""The report of the resume job: per round the start-over run, the kill and
the resume; the resume/start-over ratio and the --checkpoint overhead.

Read by the job, from bench-out/resume/runs.json."""

import json
import os
import statistics
import subprocess
import time
from pathlib import Path


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(env):
    facts = json.loads((Path(env["MD"]) / "runs.json").read_text())
    runs, failure = facts["runs"], facts["failure"]
    rows = int(env["ROWS"])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count())
    with open("/proc/loadavg") as f:
        load2 = " ".join(f.read().split()[:3])
    print("# Resumable runs (--checkpoint): resume against start over\n")
    print(f"{rows:,} rows; {env['ROUNDS']} rounds; killed with SIGKILL at {env['KILL_AT']} %; "
          f"binary {env['BUILD_ID']}; {cpu_model()}, nproc {nproc}; {env['STARTED']} to "
          f"{time.strftime('%H:%M:%S UTC', time.gmtime())}; load average {env['LOADAVG']} at the start, "
          f"{load2} at the end; server {env['SERVER']}; --checkpoint-every {env['CHECKPOINT_EVERY']}. Wall seconds of one pipeline-cli process each "
          "(start to exit), default flags and --quiet. Start over: a complete run with --checkpoint "
          "from nothing; resume: the same command after the kill. At the kill: what the poll that "
          "triggered the kill saw, then what was there once the killed process was gone (rows in the "
          "table, bytes in the .partial); resumed=: the rows the resumed run skipped.\n")  # fmt: skip
    jobs = [
        ("mysql", f"CSV -> MySQL/MariaDB, keyless table {env['TABLE']} ({env['DDL']}); "
                  f"--ignore-fields {env['IGNORED']}", "rows in table"),
        ("file", f"NDJSON -> JSON lines file ({int(env['OUT_BYTES']) / 1e6:.0f} MB out), "
                 "compared with cmp to a run without --checkpoint", "bytes in .partial"),
    ]  # fmt: skip
    for job, title, unit in jobs:
        mine = [r for r in runs if r["job"] == job]
        if not mine:
            continue
        print(f"## {title}\n")
        print(f"| round | start over s | killed after s | at the kill ({unit}) | resumed= | resume s | resume / start over |")
        print("|---|---|---|---|---|---|---|")
        ratios, fulls, resumes = [], [], []
        for rnd in sorted({r["round"] for r in mine if r["round"] > 0}):
            by = {r["kind"]: r for r in mine if r["round"] == rnd}
            full, kill, res = by.get("start over"), by.get("killed"), by.get("resume")
            cells = [str(rnd), f"{full['wall']:.2f}" if full else "—"]
            if kill:
                total = kill.get("total", rows)
                cells += [f"{kill['wall']:.2f}", f"{kill['seen'] / total:.1%} → {kill['after'] / total:.1%}"]
            else:
                cells += ["—", "—"]
            if res:
                cells += [f"{res['resumed'] / rows:.1%} ({res['resumed']:,})", f"{res['wall']:.2f}"]
            else:
                cells += ["—", "—"]
            if full and res:
                ratios.append(res["wall"] / full["wall"])
                fulls.append(full["wall"])
                resumes.append(res["wall"])
                cells.append(f"{ratios[-1]:.3f}")
            else:
                cells.append("—")
            print("| " + " | ".join(cells) + " |")
        print()
        plain = next((r for r in mine if r["kind"] == "no checkpoint"), None)
        if ratios:
            left = statistics.median(1 - r["resumed"] / rows for r in mine if r["kind"] == "resume")
            print(f"- resume / start over: median {statistics.median(ratios):.3f} "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f}); the rows left to do at the resume: "
                  f"median {left:.1%}")  # fmt: skip
            print(f"- medians: start over {statistics.median(fulls):.2f} s, resume {statistics.median(resumes):.2f} s")
        none = [r["round"] for r in mine if r["kind"] == "resume" and r["resumed"] == 0]
        if none:
            print(f"- round(s) {', '.join(map(str, none))}: resumed=0, the resume did the whole job again: the "
                  "killed run was killed before its checkpoint recorded any row done (the file is written at "
                  f"the start, then at most every --checkpoint-every, {env['CHECKPOINT_EVERY']}, while batches "
                  "commit; MySQL batches record their rows themselves)")  # fmt: skip
        if plain and fulls:
            over = statistics.median(fulls) / plain["wall"]
            print(f"- --checkpoint overhead: median start over (with --checkpoint) / one run without = "
                  f"{statistics.median(fulls):.2f} / {plain['wall']:.2f} s = {over:.3f}")  # fmt: skip
        print()
    checks = ("COUNT(*) == COUNT(DISTINCT id) == rows after every start over and resume; "
              "output == reference (cmp) after every start over and resume")  # fmt: skip
    if failure:
        print(f"FAILED: {failure}")
        raise SystemExit(1)
    print(f"All checks passed: {checks}.")
