"""CSV -> JSON lines, against Miller, DuckDB (Python and CLI) and Polars.

Measures (a) pipeline-cli CSV file -> JSON-lines file, --quiet; (b) the same
with --metrics-port 0, for what the metrics server costs; (c) Miller
(`mlr --icsv --ojsonl cat`); (d) Polars `read_csv(infer_schema=False)
.write_ndjson` and DuckDB `COPY (read_csv(all_varchar)) TO json` (values as
strings, as pipeline-cli writes them by default), DuckDB both from Python and
as the standalone CLI (PyPI duckdb-cli, pinned in peers.py). Every peer's
output is compared byte for byte with pipeline-cli's (reported, not required). Each is timed with hyperfine (1 warm-up run,
which also warms the page cache, then BENCH_RUNS timed runs) and run once
more for its peak RSS. The metrics cost is the median of BENCH_PAIRS
interleaved off/on pairs (order swapped every pair), which cancels the drift
of a shared machine. The report (bench-out/report.md) gives mean ± stddev,
rows/s, MB/s and peak RSS per command, then the targets: rows/s >= 4x
Miller's, peak RSS <= 50 MiB, metrics cost < 2 %, rows/s >= 2x the faster
of DuckDB and Polars at <= 1/8 of their peak RSS. Then each stage's
single-core MB/s and 1 vs 2 parse threads (stages.py).

Knobs: BENCH_ROWS (1000000), BENCH_RUNS (5, at least 3), BENCH_PAIRS (20),
BENCH_STAGE_RUNS (5).
"""

import json

from . import common, peers, report_csv, stages
from .common import BIN, OUT


def check_lines(path, label, rows):
    with open(path, "rb") as f:
        n = sum(1 for _ in f)
    if n == rows:
        print(f"ok: {label} wrote {n} lines")
        return True
    print(f"WRONG: {label} wrote {n} lines to {path}, expected {rows}")
    return False


def run():
    rows = common.knob("BENCH_ROWS", 1_000_000, 1)
    runs = common.knob("BENCH_RUNS", 5, 3)
    pairs = common.knob("BENCH_PAIRS", 20, 1)
    stage_runs = common.knob("BENCH_STAGE_RUNS", 5, 1)
    common.need("mlr", "miller")
    common.need("hyperfine", "hyperfine")
    common.build_release()
    csv, input_bytes = common.make_csv(rows)
    build = common.build_id()
    versions = peers.ensure()
    polars = peers.command("polars", csv, OUT / "polars.jsonl")
    duckdb = peers.command("duckdb", csv, OUT / "duckdb.jsonl")
    duckdb_cli = peers.command("duckdb-cli", csv, OUT / "duckdb-cli.jsonl")

    pipe = f"{BIN} --source-type csv --csv-file {csv} --sink-type file --output-file {OUT}/out.jsonl --quiet"
    pipe_metrics = f"{pipe} --metrics-port 0"
    mlr = f"mlr --icsv --ojsonl cat {csv} > {OUT}/mlr.jsonl"
    print(f"== timing ({runs} runs each, after 1 warm-up)", flush=True)
    common.hyperfine(
        "--warmup", 1, "--runs", runs, "--export-json", OUT / "hyperfine.json",
        "-n", "pipeline-cli", pipe,
        "-n", "pipeline-cli +metrics", pipe_metrics,
        "-n", "mlr", mlr,
        "-n", "polars", polars,
        "-n", "duckdb", duckdb,
        "-n", "duckdb-cli", duckdb_cli,
    )  # fmt: skip

    print(f"== metrics cost: {pairs} interleaved off/on pairs", flush=True)
    with open(OUT / "pairs.txt", "w") as f:
        for i in range(pairs):
            order = [pipe, pipe_metrics] if i % 2 == 0 else [pipe_metrics, pipe]
            got = {cmd: common.measure(cmd) for cmd in order}
            off, on = got[pipe], got[pipe_metrics]
            f.write(f"{off[1]:.4f}:{off[2]:.4f} {on[1]:.4f}:{on[2]:.4f}\n")

    print("== peak RSS (one run each)", flush=True)
    lines_ok = True
    for name, cmd, out in [
        ("pipeline-cli", pipe, OUT / "out.jsonl"),
        ("pipeline-cli-metrics", pipe_metrics, OUT / "out.jsonl"),
    ]:
        _, _, _, rss = common.measure(cmd)
        (OUT / f"rss-{name}.txt").write_text(f"{rss}\n")
        lines_ok &= check_lines(out, name.replace("-metrics", " +metrics"), rows)
    with open(OUT / "mlr.jsonl", "w") as mlr_out:
        _, _, _, rss = common.measure(f"mlr --icsv --ojsonl cat {csv}", stdout=mlr_out)
    (OUT / "rss-mlr.txt").write_text(f"{rss}\n")
    for name, cmd in [("polars", polars), ("duckdb", duckdb), ("duckdb-cli", duckdb_cli)]:
        _, _, _, rss = common.measure(cmd)
        (OUT / f"rss-{name}.txt").write_text(f"{rss}\n")
        lines_ok &= check_lines(OUT / f"{name}.jsonl", name, rows)
    same = {name: peers.same_bytes(OUT / f"{name}.jsonl", OUT / "out.jsonl")
            for name in ("mlr", "polars", "duckdb", "duckdb-cli")}  # fmt: skip
    (OUT / "same-bytes.json").write_text(json.dumps(same))

    print(f"== stages: {stage_runs} runs of --csv-threads 1 and 2", flush=True)
    facts = stages.measure(csv, input_bytes, str(OUT / "out-stages.jsonl"), stage_runs)
    (OUT / "stages.json").write_text(json.dumps(facts, indent=1))

    print()
    env = {
        "OUT": OUT, "ROWS": rows, "RUNS": runs, "CSV": csv, "INPUT_BYTES": input_bytes,
        "LINES_OK": "1" if lines_ok else "0", "BUILD_ID": build,
        "POLARS": versions["polars"], "DUCKDB": versions["duckdb"], "DUCKDB_CLI": versions["duckdb-cli"],
    }  # fmt: skip
    status = common.report(report_csv.main, env, OUT / "report.md")
    if not lines_ok:
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(run())
