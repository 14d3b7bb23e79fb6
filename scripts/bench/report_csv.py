"""The report of the CSV -> JSON lines job: timings, rows/s, MB/s, peak RSS, metrics-server cost, targets.

Read by the job that ran the tools, from the files it left in bench-out/.
"""

import json
import os
import platform
import subprocess
import time

from . import stages


def main(env):
    """Prints the report (Markdown); `env` holds what the job measured."""
    out = env["OUT"]
    rows = int(env["ROWS"])
    runs = int(env["RUNS"])
    in_bytes = int(env["INPUT_BYTES"])

    with open(f"{out}/hyperfine.json") as f:
        results = {r["command"]: r for r in json.load(f)["results"]}


    def rss_mib(name):
        with open(f"{out}/rss-{name}.txt") as f:
            return int(f.read().split()[-1]) / 1024


    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    mlr_version = subprocess.run(["mlr", "--version"], capture_output=True, text=True).stdout.strip()

    print("# pipeline-cli benchmark\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"- machine: {os.cpu_count()} CPUs, {cpu}, {platform.system()} {platform.release()}")
    print(f"- input: {env['CSV']}, {rows:,} rows, {in_bytes / 1e6:.1f} MB")
    print(f"- runs: {runs} timed per command after 1 warm-up (hyperfine); peak RSS from one extra run")
    print(f"- build: pipeline-cli {env['BUILD_ID']}")
    print(f"- peers: {mlr_version}; Polars {env['POLARS']}, DuckDB {env['DUCKDB']} (Python scripts, interpreter start included), "
          f"DuckDB CLI {env['DUCKDB_CLI']} (one native process)\n")

    print("| command | mean s ± stddev | median s (min-max) | rows/s | MB/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    stats = {}
    for name, rss_name in [
        ("pipeline-cli", "pipeline-cli"),
        ("pipeline-cli +metrics", "pipeline-cli-metrics"),
        ("mlr", "mlr"),
        ("polars", "polars"),
        ("duckdb", "duckdb"),
        ("duckdb-cli", "duckdb-cli"),
    ]:
        r = results[name]
        mean, sd = r["mean"], r["stddev"] or 0.0
        rss = rss_mib(rss_name)
        stats[name] = (mean, sd, r["median"], rss)
        print(
            f"| {name} | {mean:.3f} ± {sd:.3f} | {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) "
            f"| {rows / mean:,.0f} | {in_bytes / 1e6 / mean:.1f} | {rss:.1f} |"
        )

    pipe_mean, pipe_sd, pipe_med, pipe_rss = stats["pipeline-cli"]
    on_mean, on_sd, on_med, on_rss = stats["pipeline-cli +metrics"]
    mlr_mean, _, mlr_med, _ = stats["mlr"]

    # Targets use means; medians are shown alongside as a cross-check, since one
    # slow run on a shared machine moves a mean of 5 a lot.
    speedup = mlr_mean / pipe_mean  # = pipeline rows/s / mlr rows/s
    speedup_med = mlr_med / pipe_med
    peak_rss = max(pipe_rss, on_rss)
    cost_seq = (on_mean - pipe_mean) / pipe_mean * 100
    with open(f"{out}/pairs.txt") as f:
        pairs = [
            tuple(tuple(map(float, run.split(":"))) for run in line.split())
            for line in f
            if line.strip()
        ]


    def median(xs):
        xs = sorted(xs)
        mid = len(xs) // 2
        return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


    diffs = sorted((on[0] - off[0]) / off[0] * 100 for off, on in pairs)
    cost = median(diffs)
    cpu_cost = median((on[1] - off[1]) / off[1] * 100 for off, on in pairs)


    def mark(ok):
        return "PASS" if ok else "FAIL"

    fast_name = min(["polars", "duckdb", "duckdb-cli"], key=lambda n: stats[n][0])
    fast_mean, _, fast_med, _ = stats[fast_name]
    peer_rss = min(stats["polars"][3], stats["duckdb"][3], stats["duckdb-cli"][3])
    vs_fast = fast_mean / pipe_mean
    vs_fast_med = fast_med / pipe_med


    print("\n| target | value (means) | cross-check (medians) | goal | result |")
    print("|---|---|---|---|---|")
    print(f"| throughput vs Miller (rows/s ratio) | {speedup:.2f}x | {speedup_med:.2f}x | >= 4x | {mark(speedup >= 4)} |")
    print(f"| throughput vs the fastest of DuckDB, DuckDB CLI and Polars ({fast_name}) | {vs_fast:.2f}x | {vs_fast_med:.2f}x | >= 2x | {mark(vs_fast >= 2)} |")
    print(f"| peak RSS vs the smallest of DuckDB's, DuckDB CLI's and Polars' ({peer_rss:.0f} MiB) | 1/{peer_rss / peak_rss:.1f} | - | <= 1/8 | {mark(peak_rss * 8 <= peer_rss)} |")
    print(f"| pipeline-cli peak RSS (max of both runs) | {peak_rss:.1f} MiB | - | <= 50 MiB | {mark(peak_rss <= 50)} |")
    print(f"| metrics server cost, wall time, median of {len(pairs)} interleaved pairs | {cost:+.2f} % | sequential means: {cost_seq:+.2f} % | < 2 % | {mark(cost < 2)} |")
    print(f"| metrics server cost, CPU time (user+sys), same pairs | {cpu_cost:+.2f} % | - | < 2 % | {mark(cpu_cost < 2)} |")
    lines_ok = env["LINES_OK"] == "1"
    print(f"| output lines == rows | {'yes' if lines_ok else 'NO'} | - | {rows:,} | {mark(lines_ok)} |")
    print(
        f"\nPaired differences (on-off)/off ranged {diffs[0]:+.1f} % to {diffs[-1]:+.1f} %; "
        "raise BENCH_PAIRS for a tighter median."
    )
    with open(f"{out}/same-bytes.json") as f:
        same = json.load(f)
    print("\nOutput bytes identical to pipeline-cli's: "
          + ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in same.items()))  # fmt: skip
    with open(f"{out}/stages.json") as f:
        stages.report(json.load(f), in_bytes)
