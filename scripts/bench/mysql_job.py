"""CSV -> MySQL/MariaDB, against the mysql client's LOAD DATA LOCAL INFILE,
ingestr and a plain Python executemany loader.

Loads the generated CSV (id,name,email,amount,created_at,active,note) into
identical fresh InnoDB tables, one per tool, dropped and re-created (untimed,
hyperfine --prepare) before every timed run: pipeline-cli load-data (default
flags), load-data --batch-size 5000, insert; the mysql client's LOAD DATA
LOCAL INFILE of the whole file; ingestr 1.1.19 (it creates its own table, with
the same column types); scripts/bench_executemany.py (PyMySQL, 1000 rows and
a commit per batch). The fast tools get 1 warm-up and BENCH_MYSQL_RUNS timed
runs, the slow peers BENCH_MYSQL_SLOW_RUNS. The report checks every table's
row count and content checksum against the CSV and compares column types.

Knobs: BENCH_MYSQL_ROWS (1000000), BENCH_MYSQL_RUNS (5, at least 3),
BENCH_MYSQL_SLOW_RUNS (3), BENCH_MYSQL_HOST/PORT/USER/DB
(127.0.0.1/3306/root/test), BENCH_MYSQL_KEEP=1 keeps the tables.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import common, report_mysql
from .common import BIN, OUT

DDL = (
    "id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200), "
    "amount DECIMAL(12,2), created_at DATETIME, active BOOLEAN, note TEXT"
)
TABLE_OPTS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
TABLES = {
    "pcli_load_data": "bench_pcli_load_data",
    "pcli_load_data_b5000": "bench_pcli_load_data_b5000",
    "pcli_insert": "bench_pcli_insert",
    "mysql_client": "bench_mysql_client",
    "ingestr": "bench_ingestr",
    "executemany": "bench_executemany",
}
T_REF = "bench_ddl_reference"


class Job:
    def __init__(self):
        self.rows = common.knob("BENCH_MYSQL_ROWS", 1_000_000, 1)
        self.runs = common.knob("BENCH_MYSQL_RUNS", 5, 3)
        self.slow_runs = common.knob("BENCH_MYSQL_SLOW_RUNS", 3, 1)
        self.pairs = common.knob("BENCH_MYSQL_PAIRS", 6, 2)
        self.host = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
        self.port = os.environ.get("BENCH_MYSQL_PORT", "3306")
        self.user = os.environ.get("BENCH_MYSQL_USER", "root")
        self.db = os.environ.get("BENCH_MYSQL_DB", "test")
        self.url = f"mysql://{self.user}@{self.host}:{self.port}/{self.db}"
        self.md = OUT / "mysql"
        self.venv = OUT / "venv"
        self.client_cmd = None

    # --- the server ----------------------------------------------------------------
    def client(self, batch=False):
        args = [self.client_cmd, "--protocol=TCP", f"-h{self.host}", f"-P{self.port}",
                f"-u{self.user}", "--default-character-set=utf8mb4"]  # fmt: skip
        return args + (["-N", "-B"] if batch else []) + [self.db]

    def sql(self, query):
        r = subprocess.run(self.client(True) + ["-e", query], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        return r.stdout.strip()

    def recreate(self, table):
        """The hyperfine --prepare command for a table."""
        return (
            " ".join(self.client())
            + f" -e 'DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({DDL}) {TABLE_OPTS}'"
        )

    def unavailable(self, key, reason):
        text = " ".join(reason.split())[:300]
        (self.md / f"{key}.unavailable").write_text(text + "\n")
        print(f"== {key} unavailable: {text}", flush=True)

    # --- the pip peers ---------------------------------------------------------------
    def setup_venv(self):
        log = self.md / "pip.log"
        py = self.venv / "bin/python"

        def last_line():
            lines = [l for l in log.read_text().splitlines() if l.strip()] if log.exists() else []
            return lines[-1] if lines else ""

        if not os.access(py, os.X_OK):
            print(f"== creating {self.venv}", flush=True)
            with open(log, "w") as f:
                ok = subprocess.run([sys.executable, "-m", "venv", str(self.venv)], stdout=f, stderr=f).returncode == 0
            if not ok:
                shutil.rmtree(self.venv, ignore_errors=True)
                for key in ("ingestr", "executemany"):
                    self.unavailable(key, f"python3 -m venv failed: {last_line()}")
                return
        pip = [str(py), "-m", "pip", "install", "-q"]
        if subprocess.run([str(py), "-c", "import pymysql"], capture_output=True).returncode != 0:
            print(f"== pip install pymysql (into {self.venv})", flush=True)
            with open(log, "a") as f:
                if subprocess.run(pip + ["pymysql"], stdout=f, stderr=f).returncode != 0:
                    self.unavailable("executemany", f"pip install pymysql failed: {last_line()}")
        ingestr = str(self.venv / "bin/ingestr")

        def ingestr_version():
            try:
                r = subprocess.run([ingestr, "--version"], capture_output=True, text=True, timeout=120)
                return r.returncode, (r.stdout + r.stderr)
            except OSError as e:
                return 1, str(e)

        if "v1.1.19" not in ingestr_version()[1]:
            print(f"== pip install ingestr==1.1.19 (into {self.venv})", flush=True)
            with open(log, "a") as f:
                if subprocess.run(pip + ["ingestr==1.1.19"], stdout=f, stderr=f).returncode != 0:
                    self.unavailable("ingestr", f"pip install ingestr==1.1.19 failed: {last_line()}")
        if not (self.md / "ingestr.unavailable").exists():
            rc, text = ingestr_version()
            if rc != 0:
                tail = text.strip().splitlines()[-1:] or [""]
                self.unavailable("ingestr", f"the installed ingestr does not run: {tail[0]}")

    # --- timing ----------------------------------------------------------------------
    def time_tool(self, key, label, runs, warmup, prepare, cmd):
        table = TABLES[key]
        with open(self.md / "tools.tsv", "a") as f:
            f.write("\t".join([key, label, table, str(runs), str(warmup), cmd]) + "\n")
        if (self.md / f"{key}.unavailable").exists():
            return
        print(f"== timing {label}: {runs} runs" + (f" after {warmup} warm-up" if warmup else ""), flush=True)
        if common.hyperfine("--runs", runs, "--warmup", warmup, "--prepare", prepare,
                            "--export-json", self.md / f"{key}.json", "-n", label, cmd):  # fmt: skip
            return
        (self.md / f"{key}.json").unlink(missing_ok=True)
        subprocess.run(prepare, shell=True, capture_output=True)
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
        lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        self.unavailable(key, "failed: " + (lines[-1] if lines else "exit status non-zero"))

    def time_pairs(self, pcli, client):
        """The target's measure: BENCH_MYSQL_PAIRS pairs of pipeline-cli
        (default flags) and the mysql client, each on a fresh table, the
        order swapped every pair, so that neither gains from running
        first or last on a shared machine. Writes pairs.tsv: pair,
        pipeline-cli s, client s, pipeline-cli peak RSS KiB, pipeline-cli
        CPU s."""
        print(f"== {self.pairs} interleaved pairs: pipeline-cli (default flags) and the mysql client", flush=True)
        rows = []
        for i in range(self.pairs):
            got = {}
            order = ["pcli", "client"] if i % 2 == 0 else ["client", "pcli"]
            for who in order:
                table = TABLES["pcli_load_data" if who == "pcli" else "mysql_client"]
                subprocess.run(self.recreate(table), shell=True, check=True, capture_output=True)
                rc, wall, cpu, rss = common.measure(pcli if who == "pcli" else client)
                if rc != 0:
                    print(f"== pair {i}: {who} exited {rc}", flush=True)
                got[who] = (wall, cpu, rss)
            rows.append(f"{i}\t{got['pcli'][0]:.4f}\t{got['client'][0]:.4f}\t{got['pcli'][2]}\t{got['pcli'][1]:.3f}")
            print(f"   pair {i}: pipeline-cli {got['pcli'][0]:.2f} s, client {got['client'][0]:.2f} s", flush=True)
        (self.md / "pairs.tsv").write_text("\n".join(rows) + "\n")

    def cleanup(self, bruin_existed):
        tables = [T_REF]
        if os.environ.get("BENCH_MYSQL_KEEP", "0") != "1":
            tables += list(TABLES.values())
        try:
            staged = self.sql(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES "
                f"WHERE TABLE_SCHEMA IN ('{self.db}', '_bruin_staging') "
                f"AND LOCATE('__{TABLES['ingestr']}_staging', TABLE_NAME) > 0"
            )
            tables += staged.split()
        except RuntimeError:
            pass
        try:
            self.sql(f"DROP TABLE IF EXISTS {', '.join(tables)}")
            left = self.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_bruin_staging'")
            if bruin_existed == "0" and left == "0":
                self.sql("DROP DATABASE IF EXISTS _bruin_staging")
        except RuntimeError as e:
            print(f"cleanup: {e}", file=sys.stderr)
        shutil.rmtree(self.md / "ingestr-tmp", ignore_errors=True)

    def run(self):
        common.need("hyperfine", "hyperfine")
        if not (shutil.which("mysql") or shutil.which("mariadb")):
            common.need("mysql", "mariadb-client")
        self.client_cmd = "mysql" if shutil.which("mysql") else "mariadb"
        try:
            infile = self.sql("SELECT @@local_infile")
        except RuntimeError as e:
            sys.exit(f"cannot reach MySQL/MariaDB at {self.url}: {e}")
        if infile != "1":
            sys.exit(f"the server at {self.url} has local_infile=OFF; LOAD DATA LOCAL INFILE cannot be benchmarked")
        common.build_release()
        csv, input_bytes = common.make_csv(self.rows)
        abs_csv = str(Path(csv).resolve())
        shutil.rmtree(self.md, ignore_errors=True)
        self.md.mkdir(parents=True)
        load1 = common.loadavg()
        bruin_existed = self.sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_bruin_staging'")
        try:
            self.sql(f"DROP TABLE IF EXISTS {T_REF}; CREATE TABLE {T_REF} ({DDL}) {TABLE_OPTS}")
            self.setup_venv()
            (self.md / "tools.tsv").write_text("")
            self.time_all(csv, abs_csv)
            print()
            env = {
                "MD": self.md, "ROWS": self.rows, "RUNS": self.runs, "SLOW_RUNS": self.slow_runs,
                "CSV": csv, "INPUT_BYTES": input_bytes, "BUILD_ID": common.build_id(),
                "LOADAVG": load1, "MYSQL_CLIENT": self.client_cmd, "M_HOST": self.host,
                "M_PORT": self.port, "M_USER": self.user, "M_DB": self.db, "T_REF": T_REF,
                "VENV": self.venv, "DDL": DDL, "TABLE_OPTS": TABLE_OPTS,
            }  # fmt: skip
            return common.report(report_mysql.main, env, OUT / "report-mysql.md")
        finally:
            self.cleanup(bruin_existed)

    def time_all(self, csv, abs_csv):
        pcli = f"{BIN} --source-type csv --csv-file {csv} --sink-type mysql --db-url {self.url} --quiet"
        t = TABLES
        client = " ".join(self.client())
        self.time_tool("pcli_load_data", "pipeline-cli load-data", self.runs, 1,
                       self.recreate(t["pcli_load_data"]),
                       f"{pcli} --db-table {t['pcli_load_data']} --mysql-load-mode load-data")  # fmt: skip
        # The same rows as pipeline-cli: the CSV's quoting (doubled quotes, no
        # backslash escapes: ESCAPED BY ''), the header skipped, created_at
        # parsed as written (UTC) and active stored as 1/0.
        load = (
            f"LOAD DATA LOCAL INFILE '{abs_csv}' INTO TABLE {t['mysql_client']} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\\\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
            "IGNORE 1 LINES (id,name,email,amount,@created_at,@active,note) "
            "SET created_at = STR_TO_DATE(@created_at, '%Y-%m-%dT%H:%i:%sZ'), active = (@active = 'true')"
        )
        self.time_tool("mysql_client", "mysql client LOAD DATA LOCAL INFILE", self.runs, 1,
                       self.recreate(t["mysql_client"]), f'{client} --local-infile=1 -e "{load}"')  # fmt: skip
        self.time_pairs(
            f"{pcli} --db-table {t['pcli_load_data']} --mysql-load-mode load-data",
            f'{client} --local-infile=1 -e "{load}"',
        )
        self.time_tool("pcli_load_data_b5000", "pipeline-cli load-data --batch-size 5000", self.runs, 1,
                       self.recreate(t["pcli_load_data_b5000"]),
                       f"{pcli} --db-table {t['pcli_load_data_b5000']} --mysql-load-mode load-data --batch-size 5000")  # fmt: skip
        self.time_tool("pcli_insert", "pipeline-cli insert", self.runs, 1,
                       self.recreate(t["pcli_insert"]),
                       f"{pcli} --db-table {t['pcli_insert']} --mysql-load-mode insert")  # fmt: skip
        # ingestr buffers the whole input in TMPDIR: keep that in bench-out and
        # empty it before every run. Telemetry off (no network needed).
        ing_tmp = (self.md / "ingestr-tmp").resolve()
        ingestr = self.venv / "bin/ingestr"
        try:  # into the page cache
            subprocess.run([str(ingestr), "--version"], capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            pass  # time_tool reports it unavailable
        columns = "id:bigint,name:varchar(100),email:varchar(200),amount:decimal(12,2),created_at:timestamp_ntz,active:boolean,note:text"
        self.time_tool(
            "ingestr", "ingestr 1.1.19", self.slow_runs, 0,
            f"{client} -e 'DROP TABLE IF EXISTS {t['ingestr']}' && rm -rf {ing_tmp} && mkdir -p {ing_tmp}",
            f"env INGESTR_DISABLE_TELEMETRY=true DISABLE_TELEMETRY=true TMPDIR={ing_tmp} {ingestr} ingest "
            f"--yes --progress log --source-uri csv://{abs_csv} --source-table bench --dest-uri {self.url} "
            f"--dest-table {self.db}.{t['ingestr']} --primary-key id --no-load-timestamp --columns '{columns}'",
        )  # fmt: skip
        self.time_tool(
            "executemany", "Python executemany (PyMySQL)", self.slow_runs, 0,
            self.recreate(t["executemany"]),
            f"{self.venv}/bin/python scripts/bench_executemany.py --csv {csv} --table {t['executemany']} "
            f"--host {self.host} --port {self.port} --user {self.user} --database {self.db} --batch 1000",
        )  # fmt: skip


def run():
    return Job().run()


if __name__ == "__main__":
    raise SystemExit(run())
