#!/usr/bin/env bash
# Benchmarks of pipeline-cli against peer tools. Three modes:
#
#   scripts/bench.sh          CSV -> JSON lines, against Miller
#   scripts/bench.sh mysql    CSV -> MySQL/MariaDB table, against the mysql
#                             client's LOAD DATA LOCAL INFILE, ingestr and a
#                             plain Python executemany loader
#   scripts/bench.sh es       Elasticsearch/OpenSearch index -> JSON lines,
#                             against elasticdump
#
# Each mode runs every tool in one run, so that ratios stay meaningful on a
# noisy (shared, small) machine; absolute times from different runs are not
# comparable.
#
# ============================================================================
# scripts/bench.sh — CSV -> JSON lines (the default)
# ============================================================================
# What it measures:
#   a. pipeline-cli  CSV file -> JSON-lines file, --quiet
#   b. the same with --metrics-port 0 (Prometheus server on a free port),
#      to measure what the metrics server costs
#   c. Miller:       mlr --icsv --ojsonl cat
# Each is timed with hyperfine (1 warm-up run, which also warms the page cache,
# then BENCH_RUNS timed runs), and run once more under GNU time for peak RSS.
#
# Report (printed, and written to bench-out/report.md): mean s ± stddev, rows/s,
# MB/s (input bytes / mean s, MB = 10^6 bytes), peak RSS MiB per command, then
# the targets, each marked PASS/FAIL:
#   - pipeline-cli rows/s ÷ Miller rows/s  >= 4x
#   - pipeline-cli peak RSS                <= 50 MiB
#   - metrics server cost (on - off)/off   <  2 %  (median of interleaved pairs)
# Missing a target does not fail the script (it is a report, not a test); it
# exits non-zero only if something breaks, or if pipeline-cli writes the wrong
# number of lines.
#
# Run from anywhere:   scripts/bench.sh
# Env knobs:
#   BENCH_ROWS   rows in the generated CSV (default 1000000; the CSV is cached
#                in bench-out/, bench-1m.csv for the default)
#   BENCH_RUNS   timed runs per command (default 5, at least 3)
#   BENCH_PAIRS  interleaved metrics-off/on pairs for the metrics cost (default 20)
#
# Needs cargo, python3, and mlr, hyperfine and GNU time (/usr/bin/time); the
# last three are installed with apt-get if missing.
#
# ============================================================================
# scripts/bench.sh mysql — CSV -> MySQL/MariaDB
# ============================================================================
# Loads the same generated CSV (id,name,email,amount,created_at,active,note)
# into identical fresh InnoDB tables, one table per tool, dropped and
# re-created (untimed, hyperfine --prepare) before every timed run:
#   1. pipeline-cli --mysql-load-mode load-data   (defaults: 2 workers, batch 1000)
#   2. pipeline-cli --mysql-load-mode load-data --batch-size 5000
#   3. pipeline-cli --mysql-load-mode insert
#   4. the mysql client: one LOAD DATA LOCAL INFILE of the whole CSV, with SET
#      clauses that convert created_at (ISO 8601, Z) and active (true/false)
#   5. ingestr 1.1.19 (CSV source, mysql destination). ingestr creates its own
#      table (it refuses to append to one whose columns are NOT NULL), so it
#      gets --columns with the same types and --primary-key id, and loads into
#      a table it creates; the report lists how its columns differ.
#   6. scripts/bench_executemany.py: the csv module + PyMySQL, executemany of
#      1000 rows and a commit per batch
# Timing: hyperfine. Tools 1-4: 1 warm-up run, then BENCH_MYSQL_RUNS timed
# runs. The slow peers 5-6: BENCH_MYSQL_SLOW_RUNS timed runs, no warm-up.
#
# Correctness: for every table, the row count and a content checksum
#   SUM(CRC32(CONCAT_WS('|', QUOTE(id), QUOTE(name), ..., QUOTE(note))))
# with created_at as DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') (so a
# DATETIME and a DATETIME(6) holding the same instant agree, and a shifted time
# zone or lost second does not), DECIMAL and BOOLEAN as the server prints them,
# and NULL distinct from any string. The same checksum is computed from the CSV
# in Python (cached beside it as CSV.sum.json), and per-column sums show which
# column differs. CHECKSUM TABLE is shown as well (it depends on the column
# types, so it is only comparable between tables with the same DDL).
#
# Report (printed, and written to bench-out/report-mysql.md): date, machine,
# input, versions; per tool mean s ± stddev, median (min-max), rows/s, the
# ratio tool rows/s ÷ pipeline-cli load-data rows/s, client-side CPU seconds;
# the checksums; and the target "pipeline-cli is as fast as LOAD DATA LOCAL
# INFILE": PASS when pipeline-cli load-data's mean time <= 1.1 x the mysql
# client's mean time, else FAIL. A missed target still exits 0; the script
# exits 1 when a table's rows differ from the CSV (for ingestr's own table:
# its row count) or pipeline-cli fails.
#
# Peers are optional: ingestr and PyMySQL are pip-installed into
# bench-out/venv (ingestr pinned to 1.1.19, whose wheel carries the ingestr
# binary itself; newer versions download it separately, which fails without
# internet access). A peer that cannot be installed or fails is reported as
# "unavailable: <reason>" and the run goes on.
#
# Run from anywhere:   scripts/bench.sh mysql
# Env knobs:
#   BENCH_MYSQL_ROWS       rows in the CSV (default 1000000: the whole mode then
#                          takes about 5 minutes on 2 cores, over half of it in
#                          the slow peers; the CSV is shared with the default mode)
#   BENCH_MYSQL_RUNS       timed runs for tools 1-4 (default 5, at least 3)
#   BENCH_MYSQL_SLOW_RUNS  timed runs for ingestr and executemany (default 3)
#   BENCH_MYSQL_HOST, BENCH_MYSQL_PORT, BENCH_MYSQL_USER, BENCH_MYSQL_DB
#                          server to load into (default 127.0.0.1, 3306, root,
#                          test); the user logs in without a password and the
#                          server needs local_infile=ON
#   BENCH_MYSQL_KEEP=1     keep the bench_* tables afterwards (default: dropped)
#
# Needs cargo, python3 (with venv), hyperfine and the mysql/mariadb client
# (the last two installed with apt-get if missing), and the running server.
#
# ============================================================================
# scripts/bench.sh es — Elasticsearch/OpenSearch index -> JSON lines
# ============================================================================
# Starts the two Elasticsearch-API servers the tests use, from .venv/ (made by
# scripts/services.sh, which is run when .venv/ lacks them), each on a free
# 127.0.0.1 port:
#   noida-db      Elasticsearch 8 API (data dir: a temporary bench-out/es/noida-data.*)
#   osmem-server  OpenSearch 3 API (in memory; it has no data dir)
# and, on each in turn, loads BENCH_ES_DOCS generated documents into the index
# `bench` with the _bulk API (scripts/bench_es.py: urllib, batches of 5000,
# then _refresh and a _count check). A document has scalar fields, an array,
# a nested object and non-ASCII text:
#   {"id": 17, "name": "...", "amount": 1234.56, "created_at": "2024-...Z",
#    "tags": ["red", "grün"], "nested": {"level": 2, "note": "東京 #17"}}
# Then, against that server:
#   a. pipeline-cli --es-page-size 5000 -> bench-out/es.jsonl (point in time
#      + search_after on both servers; --quiet)
#   b. the same with --es-slices 2 (two reader threads, sliced point in time)
#   c. the same as a. with --es-mode scroll: the scroll API, as elasticdump uses
#   d. elasticdump (npm package, installed into bench-out/npm when missing):
#      --type=data --limit=5000 -> bench-out/elasticdump.json. --limit is its
#      page size (= --es-page-size); it reads with the scroll API, one request
#      at a time (it has no slicing for one index); --quiet as for
#      pipeline-cli; --overwrite because the file exists after the first run;
#      --searchBody=@FILE: its default body plus "track_total_hits": true.
#      elasticdump stops reading at hits.total of the first scroll page.
#      Elasticsearch and OpenSearch count the hits of a scroll exactly, but
#      both test servers answer {"value": 10000, "relation": "gte"} for more
#      than 10,000 hits, and with its default body elasticdump then writes
#      10,000 documents and exits 0. The body makes the test servers count as
#      the real ones do. That default-body behaviour is shown once per server,
#      untimed, in the report (it does not count as a failure).
# Timing: hyperfine, BENCH_ES_WARMUP warm-up runs then BENCH_ES_RUNS timed runs
# per command (output files removed before every run, untimed); then one
# extra run each under GNU time for peak RSS, whose output is checked.
#
# Correctness, per output file: exactly BENCH_ES_DOCS lines, BENCH_ES_DOCS
# distinct _id values (0 .. BENCH_ES_DOCS-1), every line valid JSON, and every
# document (pipeline-cli: the fields after _id; elasticdump: _source) equal to
# the one that was loaded.
#
# Report (printed, and written to bench-out/report-es.md): date, machine,
# documents, server versions (GET /), pipeline-cli build, elasticdump and node
# versions; per server and tool mean s ± stddev, median (min-max), docs/s, the
# ratio pipeline-cli docs/s ÷ elasticdump docs/s, peak RSS MiB, the check. No
# speed target; exits 1 only when an output is wrong (or a tool fails).
# Both servers are stopped on exit, and noida-db's data dir is removed.
#
# Run from anywhere:   scripts/bench.sh es
# Env knobs:
#   BENCH_ES_DOCS    documents to load (default 100000: the whole mode then
#                    takes about 6 minutes on 2 cores, most of it in
#                    noida-db, whose paging cost grows with the index size)
#   BENCH_ES_RUNS    timed runs per command (default 3, at least 3)
#   BENCH_ES_WARMUP  warm-up runs per command (default 1)
#
# Needs cargo, python3, node/npm, hyperfine and GNU time (npm, hyperfine and
# time are installed with apt-get if missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODE="${1:-jsonl}"
case "$MODE" in
jsonl | mysql | es) ;;
*)
    echo "usage: scripts/bench.sh [mysql|es]" >&2
    exit 2
    ;;
esac

OUT=bench-out
BIN=target/release/pipeline-cli
mkdir -p "$OUT"

# --- shared helpers ------------------------------------------------------------
# Install a Debian package only when its command is missing.
apt_updated=0
need() { # need COMMAND PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        local sudo=""
        ((EUID == 0)) || sudo="sudo"
        echo "== installing $2 (for $1)"
        if ((apt_updated == 0)); then
            $sudo apt-get update -qq
            apt_updated=1
        fi
        $sudo apt-get install -y -qq "$2"
    fi
}

build_release() {
    echo "== building release binary"
    cargo build --release --quiet
    [[ -x "$BIN" ]] || { echo "missing $BIN after build" >&2; exit 1; }
}

# make_csv ROWS: sets CSV and INPUT_BYTES; the CSV is generated once, then
# cached in bench-out/ (bench-1m.csv for a million rows).
make_csv() {
    local rows="$1"
    if [[ "$rows" == 1000000 ]]; then
        CSV="$OUT/bench-1m.csv"
    else
        CSV="$OUT/bench-$rows.csv"
    fi
    if [[ -f "$CSV" ]] && [[ "$(wc -l <"$CSV")" -eq $((rows + 1)) ]]; then
        echo "== using cached $CSV"
    else
        echo "== generating $CSV ($rows rows)"
        python3 scripts/gen_csv.py "$rows" "$CSV.partial"
        mv "$CSV.partial" "$CSV"
    fi
    INPUT_BYTES=$(stat -c %s "$CSV")
}

# Which build is measured: commit, whether the tree had local changes, and a
# hash of the binary, so reports from different runs can be compared.
build_id() {
    local id
    id="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
        id+=" + local changes"
    fi
    id+=", binary sha256 $(sha256sum "$BIN" | cut -c1-12)"
    echo "$id"
}

# ==============================================================================
# scripts/bench.sh mysql — helpers
# ==============================================================================
# unavailable KEY REASON: a peer that will not be timed, and why.
unavailable() {
    echo "$2" | tr '\n\t' '  ' | sed 's/ *$//' | cut -c1-300 >"$MD/$1.unavailable"
    echo "== $1 unavailable: $(cat "$MD/$1.unavailable")"
}

# Installs the pip peers into $VENV when missing: PyMySQL (for the executemany
# loader) and ingestr pinned to 1.1.19. A failure marks the peer unavailable.
setup_venv() {
    local log="$MD/pip.log"
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "== creating $VENV"
        if ! python3 -m venv "$VENV" >"$log" 2>&1; then
            local why="python3 -m venv failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
            rm -rf "$VENV"
            unavailable ingestr "$why"
            unavailable executemany "$why"
            return 0
        fi
    fi
    if ! "$VENV/bin/python" -c 'import pymysql' 2>/dev/null; then
        echo "== pip install pymysql (into $VENV)"
        "$VENV/bin/python" -m pip install -q pymysql >>"$log" 2>&1 ||
            unavailable executemany "pip install pymysql failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
    fi
    if [[ "$("$VENV/bin/ingestr" --version 2>/dev/null)" != *"v1.1.19"* ]]; then
        echo "== pip install ingestr==1.1.19 (into $VENV)"
        "$VENV/bin/python" -m pip install -q ingestr==1.1.19 >>"$log" 2>&1 ||
            unavailable ingestr "pip install ingestr==1.1.19 failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
    fi
    if [[ ! -f "$MD/ingestr.unavailable" ]] && ! "$VENV/bin/ingestr" --version >/dev/null 2>&1; then
        unavailable ingestr "the installed ingestr does not run: $("$VENV/bin/ingestr" --version 2>&1 | tail -n 1)"
    fi
}

# time_tool KEY LABEL TABLE RUNS WARMUP PREPARE COMMAND
# Times COMMAND with hyperfine (PREPARE, untimed, before every run) into
# $MD/KEY.json and records the tool in $MD/tools.tsv for the report. When a
# run fails, the command is run once more to keep its output, and its last
# line becomes the reason the tool is reported unavailable.
time_tool() {
    local key="$1" label="$2" table="$3" runs="$4" warmup="$5" prepare="$6" cmd="$7"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$label" "$table" "$runs" "$warmup" "$cmd" >>"$MD/tools.tsv"
    [[ -f "$MD/$key.unavailable" ]] && return 0
    if ((warmup > 0)); then
        echo "== timing $label: $runs runs after $warmup warm-up"
    else
        echo "== timing $label: $runs runs"
    fi
    if hyperfine --runs "$runs" --warmup "$warmup" --prepare "$prepare" \
        --export-json "$MD/$key.json" -n "$label" "$cmd"; then
        return 0
    fi
    rm -f "$MD/$key.json"
    sh -c "$prepare" >/dev/null 2>&1 || true
    sh -c "$cmd" >"$MD/$key.log" 2>&1 || true
    unavailable "$key" "failed: $(grep -v '^\s*$' "$MD/$key.log" | tail -n 1 || echo "exit status non-zero")"
}

# On exit: drop the tables (unless BENCH_MYSQL_KEEP=1), anything a failed
# ingestr run left behind, and ingestr's staging schema if this run made it.
mysql_cleanup() {
    local tables=("$T_REF")
    [[ "${BENCH_MYSQL_KEEP:-0}" == 1 ]] || tables+=("$T_LD" "$T_LD5" "$T_INS" "$T_CLI" "$T_ING" "$T_PY")
    # What a failed ingestr run leaves: <db>__<table>_staging_<n> tables.
    local t
    for t in $("${M_SQL[@]}" -e "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES
        WHERE TABLE_SCHEMA IN ('$M_DB', '_bruin_staging')
          AND LOCATE('__${T_ING}_staging', TABLE_NAME) > 0" 2>/dev/null || true); do
        tables+=("$t")
    done
    "${M_SQL[@]}" -e "DROP TABLE IF EXISTS $(IFS=,; echo "${tables[*]}")" || true
    if [[ "$BRUIN_EXISTED" == 0 ]] &&
        [[ "$("${M_SQL[@]}" -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_bruin_staging'" 2>/dev/null)" == 0 ]]; then
        "${M_SQL[@]}" -e "DROP DATABASE IF EXISTS _bruin_staging" || true
    fi
    rm -rf "$MD/ingestr-tmp"
}

# ==============================================================================
# scripts/bench.sh mysql
# ==============================================================================
bench_mysql() {
    local rows="${BENCH_MYSQL_ROWS:-1000000}"
    local runs="${BENCH_MYSQL_RUNS:-5}"
    local slow_runs="${BENCH_MYSQL_SLOW_RUNS:-3}"
    if ! [[ "$rows" =~ ^[1-9][0-9]*$ ]]; then
        echo "BENCH_MYSQL_ROWS must be a positive integer, got '$rows'" >&2
        exit 2
    fi
    if ! [[ "$runs" =~ ^[0-9]+$ ]] || ((runs < 3)); then
        echo "BENCH_MYSQL_RUNS must be an integer >= 3, got '$runs'" >&2
        exit 2
    fi
    if ! [[ "$slow_runs" =~ ^[1-9][0-9]*$ ]]; then
        echo "BENCH_MYSQL_SLOW_RUNS must be an integer >= 1, got '$slow_runs'" >&2
        exit 2
    fi
    M_HOST="${BENCH_MYSQL_HOST:-127.0.0.1}"
    M_PORT="${BENCH_MYSQL_PORT:-3306}"
    M_USER="${BENCH_MYSQL_USER:-root}"
    M_DB="${BENCH_MYSQL_DB:-test}"
    local url="mysql://$M_USER@$M_HOST:$M_PORT/$M_DB"

    # --- tools and server ----------------------------------------------------------
    need hyperfine hyperfine
    command -v mysql >/dev/null 2>&1 || command -v mariadb >/dev/null 2>&1 ||
        need mysql mariadb-client
    M_CLIENT=mysql
    command -v mysql >/dev/null 2>&1 || M_CLIENT=mariadb
    # The client as a string, for the command lines hyperfine runs ...
    local client="$M_CLIENT --protocol=TCP -h$M_HOST -P$M_PORT -u$M_USER --default-character-set=utf8mb4 $M_DB"
    # ... and as an array, for this script's own statements.
    M_SQL=("$M_CLIENT" --protocol=TCP "-h$M_HOST" "-P$M_PORT" "-u$M_USER"
        --default-character-set=utf8mb4 -N -B "$M_DB")

    local infile
    if ! infile=$("${M_SQL[@]}" -e 'SELECT @@local_infile' 2>&1); then
        echo "cannot reach MySQL/MariaDB at $url: $infile" >&2
        exit 1
    fi
    if [[ "$infile" != 1 ]]; then
        echo "the server at $url has local_infile=OFF; LOAD DATA LOCAL INFILE cannot be benchmarked" >&2
        exit 1
    fi

    build_release
    make_csv "$rows"
    local abs_csv="$PWD/$CSV"

    MD="$OUT/mysql" # per-tool hyperfine JSON, logs, reasons a peer is unavailable
    rm -rf "$MD"
    mkdir -p "$MD"
    local load1
    load1=$(cut -d' ' -f1-3 /proc/loadavg)

    # --- tables: one per tool, plus an empty one to compare DDLs against -------------
    local ddl="id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200), amount DECIMAL(12,2), created_at DATETIME, active BOOLEAN, note TEXT"
    local table_opts="ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    T_LD=bench_pcli_load_data
    T_LD5=bench_pcli_load_data_b5000
    T_INS=bench_pcli_insert
    T_CLI=bench_mysql_client
    T_ING=bench_ingestr
    T_PY=bench_executemany
    T_REF=bench_ddl_reference
    # ingestr keeps a staging schema; drop it afterwards only if this run made it.
    BRUIN_EXISTED=$("${M_SQL[@]}" -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_bruin_staging'")
    trap mysql_cleanup EXIT
    "${M_SQL[@]}" -e "DROP TABLE IF EXISTS $T_REF; CREATE TABLE $T_REF ($ddl) $table_opts"
    recreate() { # the hyperfine --prepare command for a table
        echo "$client -e 'DROP TABLE IF EXISTS $1; CREATE TABLE $1 ($ddl) $table_opts'"
    }

    # --- peers installed with pip: ingestr and PyMySQL, into bench-out/venv ---------
    VENV="$OUT/venv"
    setup_venv

    # --- timings ---------------------------------------------------------------------
    : >"$MD/tools.tsv"
    local pcli="$BIN --source-type csv --csv-file $CSV --sink-type mysql --db-url $url --quiet"

    time_tool pcli_load_data "pipeline-cli load-data" "$T_LD" "$runs" 1 "$(recreate $T_LD)" \
        "$pcli --db-table $T_LD --mysql-load-mode load-data"

    # The same rows as pipeline-cli: the CSV's quoting (doubled quotes, no
    # backslash escapes: ESCAPED BY ''), the header skipped, created_at parsed
    # as written (UTC) and active stored as 1/0.
    time_tool mysql_client "mysql client LOAD DATA LOCAL INFILE" "$T_CLI" "$runs" 1 "$(recreate $T_CLI)" \
        "$client --local-infile=1 -e \"LOAD DATA LOCAL INFILE '$abs_csv' INTO TABLE $T_CLI CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\\\"' ESCAPED BY '' LINES TERMINATED BY '\\n' IGNORE 1 LINES (id,name,email,amount,@created_at,@active,note) SET created_at = STR_TO_DATE(@created_at, '%Y-%m-%dT%H:%i:%sZ'), active = (@active = 'true')\""

    time_tool pcli_load_data_b5000 "pipeline-cli load-data --batch-size 5000" "$T_LD5" "$runs" 1 "$(recreate $T_LD5)" \
        "$pcli --db-table $T_LD5 --mysql-load-mode load-data --batch-size 5000"

    time_tool pcli_insert "pipeline-cli insert" "$T_INS" "$runs" 1 "$(recreate $T_INS)" \
        "$pcli --db-table $T_INS --mysql-load-mode insert"

    # ingestr buffers the whole input in TMPDIR; keep that in bench-out and
    # empty it before every run. Telemetry is off (and the network is not needed).
    local ing_tmp="$PWD/$MD/ingestr-tmp"
    "$VENV/bin/ingestr" --version >/dev/null 2>&1 || true # into the page cache (300 MB)
    time_tool ingestr "ingestr 1.1.19" "$T_ING" "$slow_runs" 0 \
        "$client -e 'DROP TABLE IF EXISTS $T_ING' && rm -rf $ing_tmp && mkdir -p $ing_tmp" \
        "env INGESTR_DISABLE_TELEMETRY=true DISABLE_TELEMETRY=true TMPDIR=$ing_tmp $VENV/bin/ingestr ingest --yes --progress log --source-uri csv://$abs_csv --source-table bench --dest-uri $url --dest-table $M_DB.$T_ING --primary-key id --no-load-timestamp --columns 'id:bigint,name:varchar(100),email:varchar(200),amount:decimal(12,2),created_at:timestamp_ntz,active:boolean,note:text'"

    time_tool executemany "Python executemany (PyMySQL)" "$T_PY" "$slow_runs" 0 "$(recreate $T_PY)" \
        "$VENV/bin/python scripts/bench_executemany.py --csv $CSV --table $T_PY --host $M_HOST --port $M_PORT --user $M_USER --database $M_DB --batch 1000"

    # --- report --------------------------------------------------------------------
    echo
    local status=0
    MD="$MD" ROWS="$rows" RUNS="$runs" SLOW_RUNS="$slow_runs" CSV="$CSV" \
        INPUT_BYTES="$INPUT_BYTES" BUILD_ID="$(build_id)" LOADAVG="$load1" \
        MYSQL_CLIENT="$M_CLIENT" M_HOST="$M_HOST" M_PORT="$M_PORT" M_USER="$M_USER" \
        M_DB="$M_DB" T_REF="$T_REF" VENV="$VENV" DDL="$ddl" TABLE_OPTS="$table_opts" \
        python3 - <<'PY' | tee "$OUT/report-mysql.md" || status=$?
import csv
import json
import os
import platform
import re
import subprocess
import time
import zlib
from decimal import ROUND_HALF_UP, Decimal

env = os.environ
md = env["MD"]
rows = int(env["ROWS"])
in_bytes = int(env["INPUT_BYTES"])
csv_path = env["CSV"]
venv = env["VENV"]
db = env["M_DB"]
mysql = [
    env["MYSQL_CLIENT"], "--protocol=TCP", "-h" + env["M_HOST"], "-P" + env["M_PORT"],
    "-u" + env["M_USER"], "--default-character-set=utf8mb4", "-N", "-B", db,
]  # fmt: skip


def sql(query):
    """Rows of a query, as lists of strings."""
    r = subprocess.run(mysql + ["-e", query], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "error")
    return [line.split("\t") for line in r.stdout.splitlines()]


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


# --- the tools and their timings ---------------------------------------------------
tools = []
with open(f"{md}/tools.tsv") as f:
    for line in f:
        key, label, table, runs, warmup, cmd = line.rstrip("\n").split("\t")
        t = {"key": key, "label": label, "table": table, "runs": int(runs),
             "warmup": int(warmup), "cmd": cmd, "result": None, "unavailable": None}  # fmt: skip
        if os.path.exists(f"{md}/{key}.unavailable"):
            with open(f"{md}/{key}.unavailable") as u:
                t["unavailable"] = u.read().strip()
        else:
            with open(f"{md}/{key}.json") as j:
                t["result"] = json.load(j)["results"][0]
        tools.append(t)
by_key = {t["key"]: t for t in tools}
base = by_key["pcli_load_data"]["result"]
client = by_key["mysql_client"]["result"]

# --- expected content, computed from the CSV (cached beside it) ---------------------
COLS = ["id", "name", "email", "amount", "created_at", "active", "note"]
DT = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z\Z")
AMOUNT = re.compile(r"[1-9]\d*\.\d\d\Z|0\.\d\d\Z")


def quote(v):
    """SQL QUOTE(): NULL unquoted, else quoted with \\ ' NUL and ^Z escaped."""
    if v is None:
        return "NULL"
    v = v.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0").replace("\x1a", "\\Z")
    return f"'{v}'"


def expected_values(r):
    """A CSV row as the server prints the loaded columns (DATETIME with %f)."""
    id_, name, email, amount, created, active, note = r
    if amount and not AMOUNT.match(amount):
        amount = str(Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP))
    if created:
        m = DT.match(created)
        created = f"{m[1]} {m[2]}.000000" if m else None  # STR_TO_DATE gives NULL
    return [
        str(int(id_)), name, email or None, amount or None, created,
        None if active == "" else ("1" if active == "true" else "0"), note or None,
    ]  # fmt: skip


def expected_sums():
    st = os.stat(csv_path)
    cache = f"{csv_path}.sum.json"
    stamp = [st.st_size, st.st_mtime_ns]
    try:
        with open(cache) as f:
            c = json.load(f)
        if c["stamp"] == stamp:
            return c
    except (OSError, ValueError, KeyError):
        pass
    n, total, cols = 0, 0, [0] * len(COLS)
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for r in reader:
            q = [quote(v) for v in expected_values(r)]
            total += zlib.crc32("|".join(q).encode())
            for i, s in enumerate(q):
                cols[i] += zlib.crc32(s.encode())
            n += 1
    c = {"stamp": stamp, "rows": n, "total": total, "cols": cols}
    with open(cache, "w") as f:
        json.dump(c, f)
    return c


expected = expected_sums()

# --- what each table holds ------------------------------------------------------------
EXPR = {c: f"QUOTE(`{c}`)" for c in COLS}
EXPR["created_at"] = "QUOTE(DATE_FORMAT(`created_at`, '%Y-%m-%d %H:%i:%s.%f'))"
SUMS_SQL = "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {}))), 0), {} FROM `{{}}`".format(
    ", ".join(EXPR[c] for c in COLS),
    ", ".join(f"COALESCE(SUM(CRC32({EXPR[c]})), 0)" for c in COLS),
)


def columns(table):
    return {
        name: (ctype, nullable, key)
        for name, ctype, nullable, key in sql(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS "
            f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
        )
    }


ref_cols = columns(env["T_REF"])


def ddl_diff(table):
    """How a table's columns differ from the benchmark DDL."""
    cols, out = columns(table), []
    for name in ref_cols.keys() | cols.keys():
        if name not in cols:
            out.append(f"{name} missing")
        elif name not in ref_cols:
            out.append(f"extra column {name} {cols[name][0]}")
        elif cols[name] != ref_cols[name]:
            (t1, n1, k1), (t2, n2, k2) = ref_cols[name], cols[name]
            d = []
            if t1 != t2:
                d.append(f"{t2} (not {t1})")
            if n1 != n2:
                d.append("NULL allowed" if n2 == "YES" else "NOT NULL")
            if k1 != k2:
                d.append(f"key '{k2}' (not '{k1}')")
            out.append(f"{name}: {', '.join(d)}")
    return "; ".join(sorted(out)) or "same"


failures = []
for t in tools:
    if t["unavailable"]:
        continue
    try:
        got = [int(x) for x in sql(SUMS_SQL.format(t["table"]))[0]]
        t["count"], t["sum"], t["cols"] = got[0], got[1], got[2:]
        t["checksum_table"] = sql(f"CHECKSUM TABLE `{t['table']}`")[0][1]
        t["ddl"] = ddl_diff(t["table"])
    except RuntimeError as e:
        t["count"] = None
        t["error"] = str(e)
        failures.append(f"{t['label']}: {e}")
        continue
    t["content_ok"] = t["sum"] == expected["total"] and t["cols"] == expected["cols"]
    t["bad_cols"] = [c for c, a, b in zip(COLS, t["cols"], expected["cols"]) if a != b]
    if t["count"] != expected["rows"]:
        failures.append(f"{t['label']}: {t['count']:,} rows, expected {expected['rows']:,}")
    elif not t["content_ok"] and t["key"] != "ingestr":
        # ingestr makes its own table, so only its row count has to match.
        failures.append(f"{t['label']}: content differs in {', '.join(t['bad_cols']) or 'rows'}")
for key in ("pcli_load_data", "pcli_load_data_b5000", "pcli_insert"):
    if by_key[key]["unavailable"]:
        failures.append(f"{by_key[key]['label']}: {by_key[key]['unavailable']}")

# --- report -----------------------------------------------------------------------------
cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
server = sql(
    "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@innodb_buffer_pool_size, "
    "@@log_bin, @@max_allowed_packet"
)[0]
ingestr_v = version([f"{venv}/bin/ingestr", "--version"]) or "ingestr unavailable"
pymysql_v = version([f"{venv}/bin/python", "-c", "import importlib.metadata as m; print(m.version('PyMySQL'))"])
runs, slow_runs = int(env["RUNS"]), int(env["SLOW_RUNS"])

print("# pipeline-cli MySQL benchmark: CSV -> MariaDB/MySQL table\n")
print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
print(
    f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} {platform.release()}; "
    f"load average at start {env['LOADAVG']} (shared machine: compare within this run only)"
)
print(f"- input: {csv_path}, {rows:,} rows, {in_bytes / 1e6:.1f} MB")
print(
    f"- server: {server[0]} at {env['M_HOST']}:{env['M_PORT']}, same machine "
    f"(innodb_flush_log_at_trx_commit={server[1]}, innodb_buffer_pool_size="
    f"{int(server[2]) // 2**20} MiB, log_bin={server[3]}, max_allowed_packet={int(server[4]) // 2**20} MiB)"
)
print(f"- build: pipeline-cli {env['BUILD_ID']}")
print(
    f"- versions: {version([env['MYSQL_CLIENT'], '--version']) or env['MYSQL_CLIENT']}; "
    f"{ingestr_v}; PyMySQL {pymysql_v or 'not installed'}; {version(['hyperfine', '--version'])}"
)
print(
    f"- runs: {runs} timed after 1 warm-up for pipeline-cli and the mysql client; "
    f"{slow_runs} timed, no warm-up, for the slow peers ingestr and executemany "
    f"(BENCH_MYSQL_SLOW_RUNS). Every run loads into a freshly dropped and re-created table "
    f"(not timed)."
)
print(f"- table DDL: `CREATE TABLE <t> ({env['DDL']}) {env['TABLE_OPTS']}`\n")

print("## Throughput\n")
print(
    "| tool | runs | mean s ± stddev | median s (min-max) | rows/s "
    "| rows/s ÷ pipeline-cli load-data | client CPU s (user+sys) |"
)
print("|---|---|---|---|---|---|---|")
for t in tools:
    r = t["result"]
    if r is None:
        print(f"| {t['label']} | - | unavailable: {t['unavailable']} | - | - | - | - |")
        continue
    mean, sd = r["mean"], r["stddev"] or 0.0
    ratio = f"{base['mean'] / mean:.2f}x" if base else "-"
    print(
        f"| {t['label']} | {len(r['times'])} | {mean:.2f} ± {sd:.2f} | {r['median']:.2f} "
        f"({r['min']:.2f}-{r['max']:.2f}) | {rows / mean:,.0f} | {ratio} | {r['user'] + r['system']:.2f} |"
    )
print(
    "\nclient CPU is that of the tool's own processes (mean per run); "
    "the server's work is not in it."
)

print("\n## Target\n")
print("| target | value (means) | cross-check (medians) | goal | result |")
print("|---|---|---|---|---|")
if base and client:
    ratio = base["mean"] / client["mean"]
    ratio_med = base["median"] / client["median"]
    verdict = "PASS" if ratio <= 1.1 else "FAIL"
    print(
        f"| pipeline-cli load-data time ÷ mysql client LOAD DATA LOCAL INFILE time "
        f"| {ratio:.2f}x | {ratio_med:.2f}x | <= 1.10x | {verdict} |"
    )
else:
    missing = "pipeline-cli load-data" if not base else "the mysql client"
    print(f"| pipeline-cli load-data time ÷ mysql client LOAD DATA time | - | - | <= 1.10x | n/a ({missing} failed) |")

print("\n## Correctness\n")
print(
    "Content checksum: `SUM(CRC32(CONCAT_WS('|', QUOTE(col), ...)))` over all 7 columns, "
    "created_at as `DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')`. "
    f"Expected from the CSV: {expected['rows']:,} rows, checksum {expected['total']}.\n"
)
print("| tool | table | rows | content checksum | = CSV | CHECKSUM TABLE | columns vs the DDL |")
print("|---|---|---|---|---|---|---|")
for t in tools:
    if t["unavailable"]:
        print(f"| {t['label']} | {t['table']} | - | - | - | - | not run |")
    elif t.get("count") is None:
        print(f"| {t['label']} | {t['table']} | - | - | NO | - | {t['error']} |")
    else:
        same = "yes" if t["content_ok"] and t["count"] == expected["rows"] else (
            "NO" + (f" ({', '.join(t['bad_cols'])} differ)" if t["bad_cols"] else "")
        )
        print(
            f"| {t['label']} | {t['table']} | {t['count']:,} | {t['sum']} | {same} "
            f"| {t['checksum_table']} | {t['ddl']} |"
        )
print(
    "\nCHECKSUM TABLE depends on the column types, so it only agrees between tables "
    "with the same DDL."
)
ing = by_key["ingestr"]
if not ing["unavailable"] and ing.get("count") is not None and not ing["content_ok"]:
    print(
        "\ningestr creates its own table, so only its row count has to match the CSV; "
        "its content difference is reported here, not counted as a failure."
    )
print(f"\nCorrectness: {'FAIL: ' + '; '.join(failures) if failures else 'PASS'}")

print("\n## Commands\n")
print("Run from the repository root; each after dropping and re-creating its table.\n")
for t in tools:
    r = t["result"]
    times = ", ".join(f"{x:.2f}" for x in r["times"]) if r else "-"
    print(f"- {t['label']} (table {t['table']}; run times s: {times})")
    print(f"  ```\n  {t['cmd']}\n  ```")

raise SystemExit(1 if failures else 0)
PY
    exit "$status"
}

# ==============================================================================
# scripts/bench.sh es — helpers
# ==============================================================================
# A port nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The servers this run started (name -> PID, URL, data dir), for the cleanup.
declare -A ES_PID=() ES_URL=() ES_DATA=()

# start_es_server NAME: starts noida-db or osmem-server from .venv/ on a free
# port, as tests/common/mod.rs does, and waits until GET / answers.
start_es_server() {
    local name="$1" port bin
    port=$(free_port)
    echo "== starting $name on 127.0.0.1:$port"
    case "$name" in
    noida-db)
        bin="$(.venv/bin/python -c 'import noida_db, os; print(os.path.dirname(noida_db.__file__))')/noida-db"
        ES_DATA[$name]=$(mktemp -d "$PWD/$EO/noida-data.XXXXXX")
        "$bin" start --only elasticsearch --host 127.0.0.1 --elasticsearch-port "$port" \
            --data-dir "${ES_DATA[$name]}" </dev/null >"$EO/$name.log" 2>&1 &
        ;;
    osmem-server)
        bin="$(.venv/bin/python -c 'import osmem_server; print(osmem_server.resolve_binary())')"
        "$bin" -addr "127.0.0.1:$port" -no-stdin-watch </dev/null >"$EO/$name.log" 2>&1 &
        ;;
    esac
    ES_PID[$name]=$!
    ES_URL[$name]="http://127.0.0.1:$port"
    if ! python3 scripts/bench_es.py wait "${ES_URL[$name]}" 60; then
        echo "$name did not start; its log:" >&2
        tail -n 20 "$EO/$name.log" >&2
        exit 1
    fi
}

# stop_es_server NAME: TERM (KILL after 10 s) to the PID this run started,
# then removes its data dir.
stop_es_server() {
    local name="$1" pid="${ES_PID[$1]:-}"
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        unset "ES_PID[$name]"
    fi
    if [[ -n "${ES_DATA[$name]:-}" ]]; then
        rm -rf "${ES_DATA[$name]}"
        unset "ES_DATA[$name]"
    fi
}

es_cleanup() {
    local name
    for name in "${!ES_PID[@]}" "${!ES_DATA[@]}"; do
        stop_es_server "$name"
    done
}

# time_es SERVER KEY LABEL OUTPUT COMMAND
# Times COMMAND with hyperfine into $EO/SERVER-KEY.json (the output files are
# removed before every run, untimed), then runs it once more under GNU time:
# peak RSS (KiB) into $EO/SERVER-KEY.rss, and OUTPUT, as that run left it,
# checked into $EO/SERVER-KEY.check. A failing command leaves its last output
# line in $EO/SERVER-KEY.failed.
time_es() {
    local server="$1" key="$2" label="$3" output="$4" cmd="$5"
    local id="$server-$key"
    printf '%s\t%s\t%s\t%s\t%s\n' "$server" "$key" "$label" "$output" "$cmd" >>"$EO/tools.tsv"
    echo "== $server: timing $label ($ES_RUNS runs after $ES_WARMUP warm-up)"
    if ! hyperfine --runs "$ES_RUNS" --warmup "$ES_WARMUP" --prepare "rm -f $ES_OUTPUTS" \
        --export-json "$EO/$id.json" -n "$label" "$cmd"; then
        rm -f "$EO/$id.json"
    fi
    echo "== $server: $label once more, for peak RSS and the output check"
    rm -f $ES_OUTPUTS
    # shellcheck disable=SC2086  # the command string is meant to word-split
    if ! /usr/bin/time -f '%M' -o "$EO/$id.rss" $cmd >"$EO/$id.log" 2>&1; then
        { grep -v '^\s*$' "$EO/$id.log" | grep -v 'Command exited with' | tail -n 1 || echo "exit status non-zero"; } |
            cut -c1-300 >"$EO/$id.failed"
        echo "== $label failed: $(cat "$EO/$id.failed")"
    fi
    python3 scripts/bench_es.py check "$output" "$ES_DOCS" | tee "$EO/$id.check"
}

# ==============================================================================
# scripts/bench.sh es
# ==============================================================================
bench_es() {
    ES_DOCS="${BENCH_ES_DOCS:-100000}"
    ES_RUNS="${BENCH_ES_RUNS:-3}"
    ES_WARMUP="${BENCH_ES_WARMUP:-1}"
    if ! [[ "$ES_DOCS" =~ ^[1-9][0-9]*$ ]]; then
        echo "BENCH_ES_DOCS must be a positive integer, got '$ES_DOCS'" >&2
        exit 2
    fi
    if ! [[ "$ES_RUNS" =~ ^[0-9]+$ ]] || ((ES_RUNS < 3)); then
        echo "BENCH_ES_RUNS must be an integer >= 3, got '$ES_RUNS'" >&2
        exit 2
    fi
    if ! [[ "$ES_WARMUP" =~ ^[0-9]+$ ]]; then
        echo "BENCH_ES_WARMUP must be an integer >= 0, got '$ES_WARMUP'" >&2
        exit 2
    fi

    EO="$OUT/es" # per-server logs, hyperfine JSON, peak RSS, output checks
    rm -rf "$EO"
    mkdir -p "$EO"
    trap es_cleanup EXIT
    local load1
    load1=$(cut -d' ' -f1-3 /proc/loadavg)

    # --- tools ---------------------------------------------------------------------
    need hyperfine hyperfine
    need /usr/bin/time time
    need npm npm
    if ! .venv/bin/python -c 'import noida_db, osmem_server' >/dev/null 2>&1; then
        echo "== .venv/ lacks the test servers: running scripts/services.sh"
        scripts/services.sh
    fi
    local ed="$OUT/npm/node_modules/.bin/elasticdump"
    if [[ ! -x "$ed" ]]; then
        echo "== npm install --prefix $OUT/npm elasticdump"
        npm install --prefix "$OUT/npm" elasticdump
    fi
    build_release

    # The files the timed commands write; removed before every run.
    local pcli_out="$OUT/es.jsonl" ed_out="$OUT/elasticdump.json"
    ES_OUTPUTS="$pcli_out $pcli_out.partial $ed_out"
    : >"$EO/tools.tsv"
    : >"$EO/servers.tsv"
    # elasticdump's default search body (from its --help), plus track_total_hits
    # (see the top of this file).
    local ed_body="$EO/elasticdump-search.json"
    echo '{"query":{"match_all":{}},"stored_fields":["*"],"_source":true,"track_total_hits":true}' >"$ed_body"

    # --- per server: start, load, time the four commands, stop ---------------------
    local server url pcli ed_cmd
    for server in noida-db osmem-server; do
        start_es_server "$server"
        url="${ES_URL[$server]}"
        printf '%s\t%s\t%s\n' "$server" "$url" "$(python3 scripts/bench_es.py info "$url")" >>"$EO/servers.tsv"
        echo "== $server: loading $ES_DOCS documents into index bench"
        python3 scripts/bench_es.py load "$url" bench "$ES_DOCS" | tee "$EO/$server.load"

        pcli="$BIN --source-type elasticsearch --es-url $url --es-index bench --sink-type file --output-file $pcli_out --quiet --es-page-size 5000"
        time_es "$server" pcli "pipeline-cli" "$pcli_out" "$pcli"
        time_es "$server" pcli_s2 "pipeline-cli --es-slices 2" "$pcli_out" "$pcli --es-slices 2"
        time_es "$server" pcli_scroll "pipeline-cli --es-mode scroll" "$pcli_out" "$pcli --es-mode scroll"
        ed_cmd="$ed --input=$url/bench --output=$ed_out --type=data --limit=5000 --overwrite --quiet"
        time_es "$server" elasticdump "elasticdump" "$ed_out" "$ed_cmd --searchBody=@$ed_body"

        # The same without --searchBody, into its own file under bench-out/es/.
        echo "== $server: elasticdump with its default search body, once (untimed)"
        local ed_default_out="$EO/$server-elasticdump-default.json" rc=0
        rm -f "$ed_default_out"
        # shellcheck disable=SC2086  # the command string is meant to word-split
        ${ed_cmd/--output=$ed_out/--output=$ed_default_out} >"$EO/$server-elasticdump_default.log" 2>&1 || rc=$?
        echo "exit status $rc" >"$EO/$server-elasticdump_default.exit"
        python3 scripts/bench_es.py check "$ed_default_out" "$ES_DOCS" >"$EO/$server-elasticdump_default.check"
        rm -f "$ed_default_out"

        stop_es_server "$server"
    done

    # --- report --------------------------------------------------------------------
    echo
    local status=0
    EO="$EO" DOCS="$ES_DOCS" RUNS="$ES_RUNS" WARMUP="$ES_WARMUP" LOADAVG="$load1" \
        BUILD_ID="$(build_id)" ED="$ed" \
        python3 - <<'PY' | tee "$OUT/report-es.md" || status=$?
import json
import os
import platform
import subprocess
import time

env = os.environ
eo = env["EO"]
docs = int(env["DOCS"])


def read(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


# --- servers and tools -----------------------------------------------------------------
servers = {}
with open(f"{eo}/servers.tsv", encoding="utf-8") as f:
    for line in f:
        name, url, root = line.rstrip("\n").split("\t")
        root = json.loads(root)
        v = root.get("version", {})
        servers[name] = {
            "url": url,
            "api": f"{v.get('distribution', 'elasticsearch')} {v.get('number', '?')}",
            "name": root.get("name", "?"),
            "load": read(f"{eo}/{name}.load", "?"),
        }
for name, s in servers.items():  # the PyPI package's version
    s["pkg"] = version([".venv/bin/python", "-c", f"import importlib.metadata as m; print(m.version('{name}'))"])

tools = []
with open(f"{eo}/tools.tsv", encoding="utf-8") as f:
    for line in f:
        server, key, label, output, cmd = line.rstrip("\n").split("\t")
        ident = f"{server}-{key}"
        t = {"server": server, "key": key, "label": label, "output": output, "cmd": cmd}
        res = read(f"{eo}/{ident}.json")
        t["result"] = json.loads(res)["results"][0] if res else None
        rss = read(f"{eo}/{ident}.rss")
        t["rss"] = int(rss.split()[-1]) / 1024 if rss and rss.split()[-1].isdigit() else None
        t["failed"] = read(f"{eo}/{ident}.failed")
        t["check"] = json.loads(read(f"{eo}/{ident}.check", '{"ok": false, "error": "not checked"}'))
        tools.append(t)

failures = []
for t in tools:
    c = t["check"]
    if t["result"] is None:
        failures.append(f"{t['server']}: {t['label']} failed in hyperfine")
    if t["failed"]:
        failures.append(f"{t['server']}: {t['label']} failed: {t['failed']}")
    if not c["ok"]:
        why = c.get("error") or (
            f"{c['lines']:,} lines, {c['distinct_ids']:,} distinct _id, "
            f"{c['bad_json']} invalid, {c['differ']} differ from the loaded documents"
        )
        failures.append(f"{t['server']}: {t['label']} output {t['output']}: {why}")

# --- report -------------------------------------------------------------------------------
cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
runs, warmup = int(env["RUNS"]), int(env["WARMUP"])

print("# pipeline-cli Elasticsearch benchmark: index -> JSON lines\n")
print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
print(
    f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {mem_gib:.0f} GiB, "
    f"{platform.system()} {platform.release()}; load average at start {env['LOADAVG']} "
    "(shared machine: compare within this run only)"
)
print(
    f"- documents: {docs:,} in index `bench` (1 index, default settings), loaded with _bulk "
    "in batches of 5000, then _refresh; fields id, name, amount, created_at, tags (array), "
    "nested {level, note}, non-ASCII text"
)
for name, s in servers.items():
    print(
        f"- server {name} {s['pkg'] or '?'}: GET / says {s['api']} (name {s['name']}), "
        f"{s['url']}, same machine; {s['load']}"
    )
print(f"- build: pipeline-cli {env['BUILD_ID']}")
print(
    f"- versions: elasticdump {version([env['ED'], '--version']) or '?'} "
    f"(node {version(['node', '--version']) or '?'}); {version(['hyperfine', '--version'])}"
)
print(
    "- protocols: pipeline-cli reads with a point in time and search_after on both servers "
    "(--es-mode auto), or with the scroll API (--es-mode scroll), 5000 documents a page, one "
    "reader (two with --es-slices 2); elasticdump reads with the scroll API (its default; "
    "scroll=10m), --limit=5000 documents a page, one request at a time"
)
print(
    f"- runs: {runs} timed per command after {warmup} warm-up (hyperfine), output files "
    "removed before every run (untimed); peak RSS from one extra run under GNU time, "
    "whose output is the one checked"
)

for name in servers:
    rows = [t for t in tools if t["server"] == name]
    ed = next((t["result"] for t in rows if t["key"] == "elasticdump"), None)
    print(f"\n## {name} ({servers[name]['api']})\n")
    print(
        "| tool | mean s ± stddev | median s (min-max) | docs/s | docs/s ÷ elasticdump "
        "| client CPU s (user+sys) | peak RSS MiB | output |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for t in rows:
        r, c = t["result"], t["check"]
        out = "ok" if c["ok"] else "WRONG"
        if "lines" in c:
            out += f": {c['lines']:,} lines, {c['distinct_ids']:,} distinct _id"
        elif c.get("error"):
            out += f": {c['error']}"
        rss = f"{t['rss']:.1f}" if t["rss"] is not None else "-"
        if r is None:
            print(f"| {t['label']} | failed | - | - | - | - | {rss} | {out} |")
            continue
        mean, sd = r["mean"], r["stddev"] or 0.0
        ratio = f"{ed['mean'] / mean:.2f}x" if ed else "-"
        print(
            f"| {t['label']} | {mean:.2f} ± {sd:.2f} | {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}) "
            f"| {docs / mean:,.0f} | {ratio} | {r['user'] + r['system']:.2f} | {rss} | {out} |"
        )

print(
    "\ndocs/s ÷ elasticdump is this tool's docs/s divided by elasticdump's against the same "
    "server (= elasticdump mean s ÷ this tool's mean s). Client CPU is the tool's own "
    "processes (mean per run); the server's work is not in it."
)
print(
    "\nelasticdump is given its default search body plus `\"track_total_hits\": true`: it stops "
    "at hits.total of the first scroll page, which Elasticsearch and OpenSearch count exactly "
    "for a scroll, but these two test servers cap at 10,000 (relation gte). Its default body, "
    "run once per server (untimed, not counted as a failure):"
)
for name in servers:
    c = json.loads(read(f"{eo}/{name}-elasticdump_default.check", '{"error": "not run"}'))
    got = c.get("error") or f"{c['lines']:,} lines, {c['distinct_ids']:,} distinct _id"
    print(f"- {name}: {got} of {docs:,} documents, {read(f'{eo}/{name}-elasticdump_default.exit', '?')}")
print(
    "\nOutput check: exactly as many lines as documents, as many distinct _id values "
    "(0 .. N-1), every line valid JSON, every document equal to the one loaded "
    "(pipeline-cli: the fields after _id; elasticdump: _source)."
)
print(f"\nCorrectness: {'FAIL: ' + '; '.join(failures) if failures else 'PASS'}")

print("\n## Commands\n")
print("Run from the repository root (the ports are this run's).\n")
for t in tools:
    r = t["result"]
    times = ", ".join(f"{x:.2f}" for x in r["times"]) if r else "-"
    print(f"- {t['server']}, {t['label']} (run times s: {times})")
    print(f"  ```\n  {t['cmd']}\n  ```")

raise SystemExit(1 if failures else 0)
PY
    exit "$status"
}

if [[ "$MODE" == mysql ]]; then
    bench_mysql
    exit
fi
if [[ "$MODE" == es ]]; then
    bench_es
    exit
fi

# ==============================================================================
# scripts/bench.sh — CSV -> JSON lines
# ==============================================================================
ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-5}"

if ! [[ "$ROWS" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_ROWS must be a positive integer, got '$ROWS'" >&2
    exit 2
fi
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || ((RUNS < 3)); then
    echo "BENCH_RUNS must be an integer >= 3, got '$RUNS'" >&2
    exit 2
fi

# --- tools -------------------------------------------------------------------
need mlr miller
need hyperfine hyperfine
need /usr/bin/time time

# --- build -------------------------------------------------------------------
build_release

# --- input (generated once, then cached) ---------------------------------------
make_csv "$ROWS"
BUILD_ID="$(build_id)"

# --- timings -------------------------------------------------------------------
PIPE_CMD="$BIN --source-type csv --csv-file $CSV --sink-type file --output-file $OUT/out.jsonl --quiet"
PIPE_METRICS_CMD="$PIPE_CMD --metrics-port 0"
MLR_CMD="mlr --icsv --ojsonl cat $CSV > $OUT/mlr.jsonl"

echo "== timing ($RUNS runs each, after 1 warm-up)"
hyperfine --warmup 1 --runs "$RUNS" \
    --export-json "$OUT/hyperfine.json" \
    -n pipeline-cli "$PIPE_CMD" \
    -n "pipeline-cli +metrics" "$PIPE_METRICS_CMD" \
    -n mlr "$MLR_CMD"

# --- metrics cost, interleaved ---------------------------------------------------
# Load on a shared machine drifts over a hyperfine run, which times all runs of
# one command before the next; alternating off/on pairs (order swapped every
# pair) and taking the median of the paired differences cancels the drift.
PAIRS="${BENCH_PAIRS:-20}"
echo "== metrics cost: $PAIRS interleaved off/on pairs"
: >"$OUT/pairs.txt"
# Wall seconds and CPU seconds (user + system) of one run, as "wall:cpu".
secs() {
    /usr/bin/time -f '%e %U %S' -o "$OUT/secs.txt" "$@" >/dev/null 2>&1
    tail -n 1 "$OUT/secs.txt" | awk '{printf "%s:%.2f", $1, $2 + $3}'
}
for ((i = 0; i < PAIRS; i++)); do
    # shellcheck disable=SC2086
    if ((i % 2 == 0)); then
        off=$(secs $PIPE_CMD); on=$(secs $PIPE_METRICS_CMD)
    else
        on=$(secs $PIPE_METRICS_CMD); off=$(secs $PIPE_CMD)
    fi
    echo "$off $on" >>"$OUT/pairs.txt"
done

# --- peak RSS (one extra run each) + correctness ---------------------------------
echo "== peak RSS (one run each under /usr/bin/time)"
rss() { # rss NAME COMMAND...  -> writes KiB to $OUT/rss-NAME.txt
    local name="$1"
    shift
    /usr/bin/time -f '%M' -o "$OUT/rss-$name.txt" "$@"
}

# Cheap correctness check: one JSON line per CSV row.
check_lines() { # check_lines FILE LABEL
    local n
    n=$(wc -l <"$1")
    if ((n == ROWS)); then
        echo "ok: $2 wrote $n lines"
    else
        echo "WRONG: $2 wrote $n lines to $1, expected $ROWS" >&2
        lines_ok=0
    fi
}
lines_ok=1

# shellcheck disable=SC2086  # the command strings are meant to word-split
rss pipeline-cli $PIPE_CMD
check_lines "$OUT/out.jsonl" "pipeline-cli"
# shellcheck disable=SC2086
rss pipeline-cli-metrics $PIPE_METRICS_CMD
check_lines "$OUT/out.jsonl" "pipeline-cli +metrics"
rss mlr mlr --icsv --ojsonl cat "$CSV" >"$OUT/mlr.jsonl"

# --- report ----------------------------------------------------------------------
echo
OUT="$OUT" ROWS="$ROWS" RUNS="$RUNS" CSV="$CSV" INPUT_BYTES="$INPUT_BYTES" \
    LINES_OK="$lines_ok" BUILD_ID="$BUILD_ID" python3 - <<'PY' | tee "$OUT/report.md"
import json
import os
import platform
import subprocess
import time

out = os.environ["OUT"]
rows = int(os.environ["ROWS"])
runs = int(os.environ["RUNS"])
in_bytes = int(os.environ["INPUT_BYTES"])

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
print(f"- input: {os.environ['CSV']}, {rows:,} rows, {in_bytes / 1e6:.1f} MB")
print(f"- runs: {runs} timed per command after 1 warm-up (hyperfine); peak RSS from one extra run")
print(f"- build: pipeline-cli {os.environ['BUILD_ID']}")
print(f"- peer: {mlr_version}\n")

print("| command | mean s ± stddev | median s (min-max) | rows/s | MB/s | peak RSS MiB |")
print("|---|---|---|---|---|---|")
stats = {}
for name, rss_name in [
    ("pipeline-cli", "pipeline-cli"),
    ("pipeline-cli +metrics", "pipeline-cli-metrics"),
    ("mlr", "mlr"),
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


print("\n| target | value (means) | cross-check (medians) | goal | result |")
print("|---|---|---|---|---|")
print(f"| throughput vs Miller (rows/s ratio) | {speedup:.2f}x | {speedup_med:.2f}x | >= 4x | {mark(speedup >= 4)} |")
print(f"| pipeline-cli peak RSS (max of both runs) | {peak_rss:.1f} MiB | - | <= 50 MiB | {mark(peak_rss <= 50)} |")
print(f"| metrics server cost, wall time, median of {len(pairs)} interleaved pairs | {cost:+.2f} % | sequential means: {cost_seq:+.2f} % | < 2 % | {mark(cost < 2)} |")
print(f"| metrics server cost, CPU time (user+sys), same pairs | {cpu_cost:+.2f} % | - | < 2 % | {mark(cpu_cost < 2)} |")
lines_ok = os.environ["LINES_OK"] == "1"
print(f"| output lines == rows | {'yes' if lines_ok else 'NO'} | - | {rows:,} | {mark(lines_ok)} |")
print(
    f"\nPaired differences (on-off)/off ranged {diffs[0]:+.1f} % to {diffs[-1]:+.1f} %; "
    "raise BENCH_PAIRS for a tighter median."
)
PY

if ((lines_ok == 0)); then
    echo "pipeline-cli output has the wrong number of lines; the timings above are not valid" >&2
    exit 1
fi
