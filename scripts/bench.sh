#!/usr/bin/env bash
# Benchmark: pipeline-cli CSV -> JSON lines, against Miller (mlr) as the peer.
#
# What it measures, all in one run so that ratios stay meaningful on a noisy
# (shared, small) machine:
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
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-5}"
OUT=bench-out
BIN=target/release/pipeline-cli

if ! [[ "$ROWS" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_ROWS must be a positive integer, got '$ROWS'" >&2
    exit 2
fi
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || ((RUNS < 3)); then
    echo "BENCH_RUNS must be an integer >= 3, got '$RUNS'" >&2
    exit 2
fi

if [[ "$ROWS" == 1000000 ]]; then
    CSV="$OUT/bench-1m.csv"
else
    CSV="$OUT/bench-$ROWS.csv"
fi

mkdir -p "$OUT"

# --- tools -------------------------------------------------------------------
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
need mlr miller
need hyperfine hyperfine
need /usr/bin/time time

# --- build -------------------------------------------------------------------
echo "== building release binary"
cargo build --release --quiet
[[ -x "$BIN" ]] || { echo "missing $BIN after build" >&2; exit 1; }

# --- input (generated once, then cached) ---------------------------------------
if [[ -f "$CSV" ]] && [[ "$(wc -l <"$CSV")" -eq $((ROWS + 1)) ]]; then
    echo "== using cached $CSV"
else
    echo "== generating $CSV ($ROWS rows)"
    python3 scripts/gen_csv.py "$ROWS" "$CSV.partial"
    mv "$CSV.partial" "$CSV"
fi
INPUT_BYTES=$(stat -c %s "$CSV")

# Which build is measured: commit, whether the tree had local changes, and a
# hash of the binary, so reports from different runs can be compared.
BUILD_ID="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    BUILD_ID+=" + local changes"
fi
BUILD_ID+=", binary sha256 $(sha256sum "$BIN" | cut -c1-12)"

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
