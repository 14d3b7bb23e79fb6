"""The report of the ndjson job: each group's commands (mean ± stddev,
median, rows/s, ratios against pipeline-cli) and the targets."""

import json
import subprocess
from pathlib import Path


def results(path):
    data = json.loads(Path(path).read_text())["results"]
    return {r["command"]: r for r in data}


def table(group, rows, first):
    print("| command | mean ± sd (s) | median (s) | rows/s | pipeline-cli is … faster |")
    print("|---|---|---|---|---|")
    base = group[first]["median"]
    for name, r in group.items():
        med = r["median"]
        ratio = "—" if name == first else f"{med / base:.2f}×"
        print(f"| {name.replace('|', chr(92) + '|')} | {r['mean']:.3f} ± {r['stddev']:.3f} | {med:.3f} | {rows / med:,.0f} | {ratio} |")
    print()


def main(env):
    md, rows = Path(env["MD"]), int(env["ROWS"])
    facts = json.loads((md / "facts.json").read_text())
    counts, rss = facts["counts"], facts["rss_kib"]
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    print("# NDJSON and gzip input\n")
    print(f"{rows:,} records; build {env['BUILD_ID']}; {env['RUNS']} runs after 1 warm-up; "
          f"{cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
          f"load average at the start {env['LOADAVG']}. Ratios compare medians of the same run. "
          f"DuckDB {env['DUCKDB']} (Python, interpreter start included), DuckDB CLI {env['DUCKDB_CLI']}.\n")  # fmt: skip

    sections = [
        (f"NDJSON -> JSON lines ({int(env['JSONL_BYTES']) / 1e6:.0f} MB of NDJSON)", "jsonl", "pipeline-cli"),
        ("NDJSON -> MySQL/MariaDB", "mysql", "pipeline-cli"),
        (f"gzip input ({int(env['GZ_BYTES']) / 1e6:.0f} MB gzip)", "gzip", "pipeline-cli file.csv.gz"),
    ]  # fmt: skip
    groups = {}
    for title, key, first in sections:
        print(f"## {title}\n")
        groups[key] = results(md / f"{key}.json")
        table(groups[key], rows, first)
        for name, n in counts.items():
            if name.startswith(key + "-") and n != rows:
                print(f"WRONG: {name} holds {n} records, expected {rows}\n")
    ok = all(n == rows for n in counts.values())
    j, m, g = groups["jsonl"], groups["mysql"], groups["gzip"]
    direct = g["pipeline-cli file.csv.gz"]["median"]
    via_zcat = g["zcat file.csv.gz | pipeline-cli -"]["median"]
    zcat_only = g["zcat file.csv.gz > /dev/null"]["median"]
    print("## Targets\n")
    lines = [
        ("NDJSON -> JSON lines faster than jq", j["jq -c ."]["median"] / j["pipeline-cli"]["median"], 1.0),
        ("NDJSON -> JSON lines faster than Miller",
         j["mlr --ijsonl --ojsonl cat"]["median"] / j["pipeline-cli"]["median"], 1.0),
        ("NDJSON -> MySQL faster than executemany", m["executemany"]["median"] / m["pipeline-cli"]["median"], 1.0),
        ("gzip file read directly vs through zcat (≥ 1: no dearer)", via_zcat / direct, 0.95),
    ]  # fmt: skip
    for what, ratio, need in lines:
        verdict = "PASS" if ratio >= need else "FAIL"
        print(f"- {what}: {ratio:.2f}× — {verdict}")
    for peer in ("duckdb (Python)", "duckdb CLI"):
        print(f"- NDJSON -> JSON lines, pipeline-cli vs {peer}: {j[peer]['median'] / j['pipeline-cli']['median']:.2f}× (no goal)")
    plain = g["pipeline-cli file.csv (plain)"]["median"]
    extra = direct - plain
    print(f"- gzip input costs {extra:.3f} s more than the plain file ({direct:.3f} s against {plain:.3f} s); "
          f"the decompression alone (zcat > /dev/null) takes {zcat_only:.3f} s: "
          f"{'PASS' if extra <= zcat_only * 1.05 else 'FAIL'} (no more than the decompression itself)")  # fmt: skip
    print(f"- peak RSS: NDJSON -> JSON lines {rss['jsonl'] / 1024:.1f} MiB, NDJSON -> MySQL "
          f"{rss['mysql'] / 1024:.1f} MiB, gzip CSV -> JSON lines {rss['gzip'] / 1024:.1f} MiB")  # fmt: skip
    same = facts.get("same_bytes", {})
    print("- NDJSON -> JSON lines output bytes identical to pipeline-cli's: "
          + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in same.items()))  # fmt: skip
    print(f"- outputs checked: {'all ' + str(rows) + ' records each' if ok else 'SOME WRONG (above)'}")
    if not ok:
        raise SystemExit(1)
