"""Benchmarks of pipeline-cli against peer tools, one module per job:

- csv_job: CSV -> JSON lines, against Miller, DuckDB (Python and CLI) and
  Polars, then each stage's single-core MB/s (stages.py) (the default)
- mysql_job: CSV -> MySQL/MariaDB, against the mysql client's LOAD DATA
  LOCAL INFILE, ingestr and a plain Python executemany loader
- es_job: Elasticsearch/OpenSearch -> JSON lines, against elasticdump and a
  bare Python scroll loop
- es_mysql_job: Elasticsearch/OpenSearch -> MySQL/MariaDB, against a
  hand-written scroll + executemany loop, ABBA pairs
- ndjson_job: NDJSON -> JSON lines (jq, Miller, DuckDB), NDJSON -> MySQL (a Python
  executemany loader), gzip input (zcat | pipeline-cli -)
- resume_job: --checkpoint: CSV -> MySQL/MariaDB and NDJSON -> JSON lines
  runs killed with SIGKILL at 80 % and resumed, against starting over, and
  the overhead of --checkpoint

Each job runs every tool in the same run, so ratios stay meaningful on a
noisy (shared, small) machine; absolute times from different runs are not
comparable. Shared helpers are in common.py, each job's report in
report_<job>.py. Run from the repository root: `python3 -m scripts.bench
[csv|mysql|es|es-mysql|ndjson|resume]` (scripts/bench.sh does that); reports go to bench-out/.
"""
