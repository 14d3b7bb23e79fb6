#!/usr/bin/env bash
# Benchmarks of pipeline-cli against peer tools (the jobs, their peers, knobs
# and reports are described in scripts/bench/__init__.py and each job module):
#
#   scripts/bench.sh          CSV -> JSON lines, against Miller, DuckDB (Python
#                             and CLI) and Polars; per-stage single-core MB/s
#   scripts/bench.sh mysql    CSV -> MySQL/MariaDB, against the mysql client's
#                             LOAD DATA LOCAL INFILE, ingestr and executemany
#   scripts/bench.sh es       Elasticsearch/OpenSearch -> JSON lines, against
#                             elasticdump and a bare Python scroll loop
#   scripts/bench.sh es-mysql Elasticsearch -> MySQL/MariaDB against a Python
#                             scroll + executemany loop (ABBA pairs)
#   scripts/bench.sh ndjson   NDJSON -> JSON lines against jq, Miller and DuckDB, NDJSON
#                             -> MySQL against a Python executemany loader,
#                             gzip CSV input against zcat | pipeline-cli -
#   scripts/bench.sh resume   --checkpoint: CSV -> MySQL/MariaDB and NDJSON -> JSON
#                             lines killed (SIGKILL) at 80 % and resumed, against
#                             starting over; the overhead of --checkpoint
#
# Sizes are environment knobs listed in each job module's docstring.
# Reports are printed and written to bench-out/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 -m scripts.bench "$@"
