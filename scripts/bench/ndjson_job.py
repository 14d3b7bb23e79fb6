"""NDJSON and gzip input, against the tools a user would reach for instead.

Three groups, each timed with hyperfine in one run (1 warm-up, then
BENCH_NDJSON_RUNS timed runs), so the ratios compare like with like:

1. NDJSON -> JSON lines: pipeline-cli --source-type jsonl against
   `jq -c .`, Miller (`mlr --ijsonl --ojsonl cat`) and DuckDB
   (`COPY (read_json(..., format='newline_delimited', columns=...)) TO ...
   (FORMAT json)`, the columns given so that created_at stays text) from
   Python and as the standalone CLI (peers.py; outputs compared byte for
   byte with pipeline-cli's, reported, not required: DuckDB writes the
   decimal 4207.40 as 4207.4). The input is the
   benchmark CSV converted once by pipeline-cli with --csv-infer-types
   (numbers, booleans, nulls, strings with escapes), cached in bench-out/.
2. NDJSON -> MySQL/MariaDB: pipeline-cli (default flags) against a plain
   Python loader (scripts/bench_executemany.py --jsonl: json + PyMySQL
   executemany, 1000 rows and a commit per batch), each into a fresh table
   (hyperfine --prepare); the row counts are checked.
3. gzip input: pipeline-cli reading the gzip-compressed CSV itself, against
   `zcat file.csv.gz | pipeline-cli --csv-file -` and against `zcat` alone
   (the decompression itself); the plain file for reference. Target: the
   gzip file read directly costs no more than through zcat.

Peak RSS of each pipeline-cli command from one more run (GNU time). Every
output's line count is checked. Knobs: BENCH_ROWS (1000000),
BENCH_NDJSON_RUNS (3, at least 2); MySQL as for the mysql job
(BENCH_MYSQL_HOST/PORT/USER/DB). The report goes to bench-out/report-ndjson.md.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import common, peers, report_ndjson
from .common import BIN, OUT
from .mysql_job import DDL, TABLE_OPTS

TABLES = {"pcli": "bench_ndjson_pcli", "executemany": "bench_ndjson_executemany"}


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def make_inputs(rows):
    csv, _ = common.make_csv(rows)
    jsonl = Path(csv).with_suffix(".jsonl")
    if not (jsonl.exists() and count_lines(jsonl) == rows):
        print(f"== converting {csv} to {jsonl} (typed values)", flush=True)
        subprocess.run([BIN, "--source-type", "csv", "--csv-file", csv, "--csv-infer-types",
                        "--sink-type", "file", "--output-file", str(jsonl), "--quiet"], check=True)  # fmt: skip
    gz = Path(csv + ".gz")
    if not gz.exists() or gz.stat().st_mtime < Path(csv).stat().st_mtime:
        print(f"== compressing {csv} to {gz} (gzip -6)", flush=True)
        with open(f"{gz}.partial", "wb") as f:
            subprocess.run(["gzip", "-6", "-c", csv], stdout=f, check=True)
        os.replace(f"{gz}.partial", gz)
    return csv, str(jsonl), str(gz)


def pymysql_python():
    """A venv with PyMySQL (bench-out/venv, shared with the mysql job)."""
    venv = OUT / "venv"
    py = venv / "bin/python"
    if not os.access(py, os.X_OK):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import pymysql"], capture_output=True).returncode != 0:
        print(f"== pip install pymysql (into {venv})", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "pymysql"], check=True)
    return str(py)


def run():
    rows = common.knob("BENCH_ROWS", 1_000_000, 1)
    runs = common.knob("BENCH_NDJSON_RUNS", 3, 2)
    host = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
    port = os.environ.get("BENCH_MYSQL_PORT", "3306")
    user = os.environ.get("BENCH_MYSQL_USER", "root")
    db = os.environ.get("BENCH_MYSQL_DB", "test")
    common.need("hyperfine", "hyperfine")
    common.need("mlr", "miller")
    common.need("jq", "jq")
    client = "mysql" if shutil.which("mysql") else "mariadb"
    common.build_release()
    csv, jsonl, gz = make_inputs(rows)
    md = OUT / "ndjson"
    shutil.rmtree(md, ignore_errors=True)
    md.mkdir(parents=True)
    py = pymysql_python()
    versions = peers.ensure()
    load1 = common.loadavg()

    # 1. NDJSON -> JSON lines.
    out = {k: md / f"{k}.jsonl" for k in ("pcli", "jq", "mlr", "duckdb", "duckdb-cli")}
    jsonl_cmds = {
        "pcli": f"{BIN} --source-type jsonl --jsonl-file {jsonl} --sink-type file --output-file {out['pcli']} --quiet",
        "jq": f"jq -c . {jsonl} > {out['jq']}",
        "mlr": f"mlr --ijsonl --ojsonl cat {jsonl} > {out['mlr']}",
        "duckdb": peers.command("duckdb_ndjson", jsonl, out["duckdb"]),
        "duckdb-cli": peers.command("duckdb-cli_ndjson", jsonl, out["duckdb-cli"]),
    }
    print(f"== NDJSON -> JSON lines ({runs} runs each, after 1 warm-up)", flush=True)
    common.hyperfine("--warmup", 1, "--runs", runs, "--export-json", md / "jsonl.json",
                     "-n", "pipeline-cli", jsonl_cmds["pcli"], "-n", "jq -c .", jsonl_cmds["jq"],
                     "-n", "mlr --ijsonl --ojsonl cat", jsonl_cmds["mlr"],
                     "-n", "duckdb (Python)", jsonl_cmds["duckdb"],
                     "-n", "duckdb CLI", jsonl_cmds["duckdb-cli"])  # fmt: skip
    counts = {f"jsonl-{k}": count_lines(p) for k, p in out.items()}
    same = {k: peers.same_bytes(p, out["pcli"]) for k, p in out.items() if k != "pcli"}

    # 2. NDJSON -> MySQL.
    base = [client, "--protocol=TCP", f"-h{host}", f"-P{port}", f"-u{user}", db]
    recreate = {t: " ".join(base) + f" -e 'DROP TABLE IF EXISTS {n}; CREATE TABLE {n} ({DDL}) {TABLE_OPTS}'"
                for t, n in TABLES.items()}  # fmt: skip
    mysql_cmds = {
        "pcli": f"{BIN} --source-type jsonl --jsonl-file {jsonl} --sink-type mysql "
        f"--db-url mysql://{user}@{host}:{port}/{db} --db-table {TABLES['pcli']} --quiet",
        "executemany": f"{py} scripts/bench_executemany.py --jsonl {jsonl} --table {TABLES['executemany']} "
        f"--host {host} --port {port} --user {user} --database {db}",
    }
    print(f"== NDJSON -> MySQL ({runs} runs each, a fresh table before each)", flush=True)
    common.hyperfine("--warmup", 1, "--runs", runs, "--export-json", md / "mysql.json",
                     "--prepare", recreate["pcli"], "-n", "pipeline-cli", mysql_cmds["pcli"],
                     "--prepare", recreate["executemany"], "-n", "executemany", mysql_cmds["executemany"])  # fmt: skip
    for t, n in TABLES.items():
        r = subprocess.run(base[:-1] + ["-N", "-B", db, "-e", f"SELECT COUNT(*) FROM {n}"],
                           capture_output=True, text=True)  # fmt: skip
        counts[f"mysql-{t}"] = int(r.stdout.strip() or 0)

    # 3. gzip input.
    gz_out = {k: md / f"gz-{k}.jsonl" for k in ("direct", "zcat", "plain")}
    pcli_csv = f"{BIN} --source-type csv --sink-type file --quiet"
    gz_cmds = {
        "direct": f"{pcli_csv} --csv-file {gz} --output-file {gz_out['direct']}",
        "zcat": f"zcat {gz} | {pcli_csv} --csv-file - --output-file {gz_out['zcat']}",
        "zcat-only": f"zcat {gz} > /dev/null",
        "plain": f"{pcli_csv} --csv-file {csv} --output-file {gz_out['plain']}",
    }
    print(f"== gzip input ({runs} runs each, after 1 warm-up)", flush=True)
    common.hyperfine("--warmup", 1, "--runs", runs, "--export-json", md / "gzip.json",
                     "-n", "pipeline-cli file.csv.gz", gz_cmds["direct"],
                     "-n", "zcat file.csv.gz | pipeline-cli -", gz_cmds["zcat"],
                     "-n", "zcat file.csv.gz > /dev/null", gz_cmds["zcat-only"],
                     "-n", "pipeline-cli file.csv (plain)", gz_cmds["plain"])  # fmt: skip
    counts.update({f"gzip-{k}": count_lines(p) for k, p in gz_out.items()})

    print("== peak RSS (one run each)", flush=True)
    rss = {}
    for key, cmd in [("jsonl", jsonl_cmds["pcli"]), ("gzip", gz_cmds["direct"])]:
        _, _, _, rss[key] = common.measure(cmd)
    subprocess.run(recreate["pcli"], shell=True, check=True, capture_output=True)
    _, _, _, rss["mysql"] = common.measure(mysql_cmds["pcli"])
    if os.environ.get("BENCH_MYSQL_KEEP", "0") != "1":
        subprocess.run(base + ["-e", "DROP TABLE IF EXISTS " + ", ".join(TABLES.values())], capture_output=True)
    (md / "facts.json").write_text(json.dumps({"counts": counts, "rss_kib": rss, "same_bytes": same}, indent=1))
    print()
    env = {
        "MD": md, "ROWS": rows, "RUNS": runs, "BUILD_ID": common.build_id(), "LOADAVG": load1,
        "JSONL": jsonl, "GZ": gz, "GZ_BYTES": Path(gz).stat().st_size,
        "JSONL_BYTES": Path(jsonl).stat().st_size,
        "DUCKDB": versions["duckdb"], "DUCKDB_CLI": versions["duckdb-cli"],
    }  # fmt: skip
    return common.report(report_ndjson.main, env, OUT / "report-ndjson.md")


if __name__ == "__main__":
    raise SystemExit(run())
