#!/usr/bin/env bash
# Benchmarks of pipeline-cli against peer tools (the jobs, their peers, knobs
# and reports are described in scripts/bench/__init__.py and each job module):
#
#   scripts/bench.sh          CSV -> JSON lines, against Miller, DuckDB and Polars
#   scripts/bench.sh mysql    CSV -> MySQL/MariaDB, against the mysql client's
#                             LOAD DATA LOCAL INFILE, ingestr and executemany
#   scripts/bench.sh es       Elasticsearch/OpenSearch -> JSON lines, against
#                             elasticdump and a bare Python scroll loop
#   scripts/bench.sh ndjson   NDJSON -> JSON lines against jq and Miller, NDJSON
#                             -> MySQL against a Python executemany loader,
#                             gzip CSV input against zcat | pipeline-cli -
#
# Reports are printed and written to bench-out/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 -m scripts.bench "$@"
