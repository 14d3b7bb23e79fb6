"""The report of the es-mysql job: every run, then per server the medians of
the timed runs and the ratios (Python loop / pipeline-cli); a run whose table
does not hold every document, or tools whose tables differ, fail it."""

import json
import os
import statistics
from pathlib import Path


def main(env):
    runs = json.loads((Path(env["EO"]) / "runs.json").read_text())
    docs = int(env["DOCS"])
    print("# Elasticsearch -> MySQL/MariaDB: pipeline-cli against a hand-written Python loop\n")
    print(f"{docs:,} documents; build {env['BUILD_ID']}; {os.cpu_count()} CPUs; load average at the start "
          f"{env['LOADAVG']}; {env['PAIRS']} pairs in ABBA order, each run into the same table, truncated "
          "before it (untimed). Python loop: scroll pages of 1,000 on one keep-alive connection, PyMySQL "
          "executemany + commit per page on one connection (scripts/bench_es_mysql.py). pipeline-cli: "
          "default flags but --es-mode scroll (the loop's paging; noida-db's point-in-time paging is "
          "much slower than its scroll). CPU is the client process's user + sys (os.wait4).\n")  # fmt: skip
    print(f"Table columns: {env['DDL']}\n")
    print("| server | run | tool | wall s | client CPU s | peak RSS MiB | rows | exit |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['server']} | {r['kind']} | {r['tool']} | {r['wall']:.3f} | {r['cpu']:.3f} "
              f"| {r['rss_kib'] / 1024:.1f} | {r['rows']:,} | {r['exit']} |")  # fmt: skip
    ok = all(r["exit"] == 0 and r["rows"] == docs for r in runs)
    for server in dict.fromkeys(r["server"] for r in runs):
        timed = [r for r in runs if r["server"] == server and r["kind"] != "warm-up"]
        med = {}
        for tool in ("pipeline-cli", "python loop"):
            mine = [r for r in timed if r["tool"] == tool]
            med[tool] = (statistics.median(r["wall"] for r in mine), statistics.median(r["cpu"] for r in mine))
        (pw, pc), (lw, lc) = med["pipeline-cli"], med["python loop"]
        sums = {r["tool"]: r["checksum"] for r in timed}
        same = len({r["checksum"] for r in timed}) == 1
        print(f"\n## {server} (medians of {len(timed) // 2} runs each)\n")
        print("| tool | wall s | docs/s | client CPU s |")
        print("|---|---|---|---|")
        print(f"| pipeline-cli | {pw:.3f} | {docs / pw:,.0f} | {pc:.3f} |")
        print(f"| python loop | {lw:.3f} | {docs / lw:,.0f} | {lc:.3f} |")
        print(f"\n- wall: the Python loop takes {lw / pw:.2f}x pipeline-cli's time")
        print(f"- client CPU: the Python loop uses {lc / pc:.2f}x pipeline-cli's CPU" if pc > 0 else "- client CPU: -")
        print(f"- table contents (CHECKSUM TABLE) the same after every timed run of both tools: "
              f"{'yes' if same else 'NO: ' + json.dumps(sums)}")  # fmt: skip
        ok &= same
    print(f"\n- every run exited 0 and left {docs:,} rows: {'yes' if ok else 'NO (above)'}")
    if not ok:
        raise SystemExit(1)
