"""Elasticsearch/OpenSearch -> MySQL/MariaDB, against a hand-written Python
pipeline.

Starts the test server(s) from .venv/ (BENCH_ESM_SERVERS, default noida-db;
`noida-db,osmem-server` for both), loads BENCH_ESM_DOCS documents
(scripts/bench_es.py load) and copies them into one existing InnoDB table
with pipeline-cli (default flags but `--es-mode scroll`, the paging the
loop uses: noida-db's point-in-time paging is some 6x slower than its
scroll on 100,000 documents, a cost of the test server) and with scripts/bench_es_mysql.py (scroll
pages of 1,000 on one keep-alive connection, PyMySQL executemany and a
commit per page on one connection). The table is truncated (untimed) before
every run. Runs go in ABBA order: BENCH_ESM_PAIRS pairs (3), pipeline-cli
first in the even ones, after BENCH_ESM_WARMUP untimed warm-up runs of each
(1). Each run gives its wall time and the client's CPU time (user + sys of
the child process, from os.wait4 via common.measure); after each run the
table's row count is checked and its CHECKSUM TABLE kept, so the report can
say whether both tools left the same rows. The report
(bench-out/report-es-mysql.md) gives every run, the medians and the ratios
(Python loop / pipeline-cli).

Knobs: BENCH_ESM_DOCS (100000), BENCH_ESM_PAIRS (3), BENCH_ESM_WARMUP (1),
BENCH_ESM_SERVERS (noida-db), BENCH_MYSQL_HOST/PORT/USER/DB
(127.0.0.1/3306/root/test), BENCH_MYSQL_KEEP=1 keeps the table.
"""

import json
import os
import shutil
import subprocess
import sys

from . import common, report_es_mysql
from .common import BIN, OUT
from .es_job import VENV_PY, Server
from .ndjson_job import pymysql_python

TABLE = "bench_es_mysql"
DDL = (
    "`_id` VARCHAR(32) PRIMARY KEY, id BIGINT NOT NULL, name VARCHAR(200), amount DECIMAL(12,2), "
    "created_at DATETIME, tags JSON, nested JSON"
)
TABLE_OPTS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
TOOLS = ("pipeline-cli", "python loop")


class Job:
    def __init__(self):
        self.docs = common.knob("BENCH_ESM_DOCS", 100_000, 1)
        self.pairs = common.knob("BENCH_ESM_PAIRS", 3, 1)
        self.warmup = common.knob("BENCH_ESM_WARMUP", 1, 0)
        self.servers = [s for s in os.environ.get("BENCH_ESM_SERVERS", "noida-db").split(",") if s]
        bad = [s for s in self.servers if s not in ("noida-db", "osmem-server")]
        if bad or not self.servers:
            sys.exit(f"BENCH_ESM_SERVERS: noida-db and/or osmem-server, comma-separated; got {bad or 'none'}")
        self.host = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
        self.port = os.environ.get("BENCH_MYSQL_PORT", "3306")
        self.user = os.environ.get("BENCH_MYSQL_USER", "root")
        self.db = os.environ.get("BENCH_MYSQL_DB", "test")
        self.client = "mysql" if shutil.which("mysql") else "mariadb"
        self.eo = OUT / "es-mysql"

    def sql(self, statement):
        """Runs SQL with the mysql client; its output (tab-separated, no header)."""
        cmd = [self.client, "--protocol=TCP", f"-h{self.host}", f"-P{self.port}", f"-u{self.user}",
               "-N", "-B", self.db, "-e", statement]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"mysql: {statement[:80]}: {r.stderr.strip()}")
        return r.stdout.strip()

    def commands(self, url, py):
        pcli = (f"{BIN} --source-type elasticsearch --es-url {url} --es-index bench --es-mode scroll "
                f"--sink-type mysql --db-url mysql://{self.user}@{self.host}:{self.port}/{self.db} --db-table {TABLE} --quiet")  # fmt: skip
        loop = (f"{py} scripts/bench_es_mysql.py {url} bench {TABLE} --page 1000 --host {self.host} "
                f"--port {self.port} --user {self.user} --database {self.db}")  # fmt: skip
        return dict(zip(TOOLS, (pcli, loop)))

    def one(self, server, tool, cmd, kind):
        """One run on a truncated table: a dict for the report."""
        self.sql(f"TRUNCATE TABLE {TABLE}")
        log = self.eo / f"{server}-{tool.replace(' ', '_')}.log"
        with open(log, "w") as f:
            rc, wall, cpu, rss = common.measure(cmd, stdout=f, stderr=f)
        rows = int(self.sql(f"SELECT COUNT(*) FROM {TABLE}") or 0)
        checksum = self.sql(f"CHECKSUM TABLE {TABLE}").split()[-1]
        print(f"   {kind:7} {tool:13} wall {wall:7.3f} s  CPU {cpu:7.3f} s  rows {rows:,}  exit {rc}", flush=True)
        if rc != 0:
            lines = [l for l in log.read_text().splitlines() if l.strip()]
            print(f"   {tool} failed: {(lines[-1] if lines else 'no output')[:300]}")
        return {"server": server, "tool": tool, "kind": kind, "exit": rc, "wall": wall, "cpu": cpu,
                "rss_kib": rss, "rows": rows, "checksum": checksum}  # fmt: skip

    def time_server(self, server, py, runs):
        url = server.url
        print(f"== {server.name}: loading {self.docs} documents into index bench", flush=True)
        load = subprocess.run([sys.executable, "scripts/bench_es.py", "load", url, "bench", str(self.docs)],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        print(load, end="")
        cmds = self.commands(url, py)
        for tool in TOOLS:
            for _ in range(self.warmup):
                runs.append(self.one(server.name, tool, cmds[tool], "warm-up"))
        print(f"== {server.name}: {self.pairs} pairs in ABBA order", flush=True)
        for i in range(self.pairs):
            order = TOOLS if i % 2 == 0 else TOOLS[::-1]
            for tool in order:
                runs.append(self.one(server.name, tool, cmds[tool], f"pair {i + 1}"))

    def run(self):
        if subprocess.run([VENV_PY, "-c", "import noida_db, osmem_server"], capture_output=True).returncode != 0:
            print("== .venv/ lacks the test servers: running scripts/services.sh", flush=True)
            subprocess.run(["scripts/services.sh"], check=True)
        common.build_release()
        py = pymysql_python()
        shutil.rmtree(self.eo, ignore_errors=True)
        self.eo.mkdir(parents=True)
        load1 = common.loadavg()
        self.sql(f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} ({DDL}) {TABLE_OPTS}")
        runs = []
        try:
            for name in self.servers:
                server = Server(name, self.eo)
                try:
                    self.time_server(server, py, runs)
                finally:
                    server.stop()
        finally:
            if os.environ.get("BENCH_MYSQL_KEEP", "0") != "1":
                self.sql(f"DROP TABLE IF EXISTS {TABLE}")
        (self.eo / "runs.json").write_text(json.dumps(runs, indent=1))
        print()
        env = {"EO": self.eo, "DOCS": self.docs, "PAIRS": self.pairs, "LOADAVG": load1,
               "BUILD_ID": common.build_id(), "DDL": DDL}  # fmt: skip
        return common.report(report_es_mysql.main, env, OUT / "report-es-mysql.md")


def run():
    return Job().run()


if __name__ == "__main__":
    raise SystemExit(run())
