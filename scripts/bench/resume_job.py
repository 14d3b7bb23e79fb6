"""Resumable runs (--checkpoint): what a run killed part way and started again
costs, against starting over, and what --checkpoint costs a run that is never
killed (docs/resume.md).

Two jobs, each in BENCH_RESUME_ROUNDS rounds; every run is one pipeline-cli
process, timed from its start to its exit (wall clock):

1. CSV -> MySQL/MariaDB (default flags, --ignore-fields for the CSV columns
   the table lacks) into the keyless table bench_resume (id BIGINT,
   name VARCHAR(100), amount DECIMAL(12,2)), from the benchmark CSV
   (scripts/gen_csv.py, cached in bench-out/). First one run without
   --checkpoint (the overhead's baseline). Then each round: (a) start over:
   an empty table, no checkpoint, one full run with --checkpoint; (b) the
   same command, killed with SIGKILL once BENCH_RESUME_KILL_AT % of the rows
   are in the table (COUNT(*) polled on one kept-open connection: a mysql
   client with --unbuffered on a pipe), then the same command again (the
   resume). The kill lands a little late: the rows in the table once the
   killed process is gone and the resumed run's resumed= are recorded.
   After (a) and after the resume: COUNT(*) == COUNT(DISTINCT id) == ROWS,
   else the job fails (exit 1).
2. NDJSON -> JSON lines file: the benchmark CSV converted once with
   --csv-infer-types (bench-out/bench-*.jsonl, shared with the ndjson job).
   A run without --checkpoint writes the reference output (and is the
   overhead's baseline); then each round as above, the kill once the
   output's .partial holds BENCH_RESUME_KILL_AT % of the reference's bytes;
   after (a) and after the resume the output must equal the reference
   byte for byte (cmp).

Knobs: BENCH_RESUME_ROWS (1000000), BENCH_RESUME_ROUNDS (3),
BENCH_RESUME_KILL_AT (80, percent of the rows, 1 to 99),
BENCH_RESUME_CHECKPOINT_EVERY (100ms: passed as --checkpoint-every to
every run with --checkpoint; a 1M-row file job takes under a second here,
and a run killed before the checkpoint file's first write after the start
has nothing to resume from, save the MySQL batches, which record their
rows themselves; the run's own default is 1s), BENCH_BIN (the
pipeline-cli binary to measure; unset: target/release/pipeline-cli, built
with cargo first), BENCH_MYSQL_HOST/PORT/USER/DB (127.0.0.1/3306/root/test),
BENCH_MYSQL_KEEP=1 keeps the table. Logs, runs.json and the report go to
bench-out/resume/ and bench-out/report-resume.md.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import common, report_resume
from .common import OUT

TABLE = "bench_resume"
DDL = "id BIGINT, name VARCHAR(100), amount DECIMAL(12,2)"
TABLE_OPTS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
IGNORED = "email,created_at,active,note"
RUN_LIMIT_S = 1800  # one run longer than this: something is wrong



def marked_complete(ckpt):
    """True when the checkpoint says its job completed (a complete run
    marks it so; the same job again would have nothing to do)."""
    try:
        with open(ckpt) as f:
            return json.load(f).get("complete") is True
    except (OSError, ValueError):
        return False

class Failed(Exception):
    """A check failed: the job stops and exits 1."""


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def resumed_of(log):
    """resumed=N of the summary line in a run's log (0 when it has none)."""
    found = re.findall(r"\bresumed=(\d+)", Path(log).read_text(errors="replace"))
    return int(found[-1]) if found else 0


def last_line(log):
    lines = [l for l in Path(log).read_text(errors="replace").splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"


class Poller:
    """One kept-open connection to the server: a mysql client reading
    statements from a pipe, writing each result at once (--unbuffered)."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args + ["--unbuffered"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip

    def value(self, query):
        self.proc.stdin.write(query + ";\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise Failed(f"the polling connection closed: {self.proc.stderr.read().strip()}")
        return line.strip()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Job:
    def __init__(self):
        self.rows = common.knob("BENCH_RESUME_ROWS", 1_000_000, 1)
        self.rounds = common.knob("BENCH_RESUME_ROUNDS", 3, 1)
        self.kill_at = common.knob("BENCH_RESUME_KILL_AT", 80, 1)
        if self.kill_at > 99:
            sys.exit(f"BENCH_RESUME_KILL_AT must be 1 to 99, got {self.kill_at}")
        self.every = os.environ.get("BENCH_RESUME_CHECKPOINT_EVERY", "100ms")
        self.bin = os.environ.get("BENCH_BIN", "")
        self.host = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
        self.port = os.environ.get("BENCH_MYSQL_PORT", "3306")
        self.user = os.environ.get("BENCH_MYSQL_USER", "root")
        self.db = os.environ.get("BENCH_MYSQL_DB", "test")
        self.url = f"mysql://{self.user}@{self.host}:{self.port}/{self.db}"
        self.md = OUT / "resume"
        self.client_cmd = None
        self.runs = []
        self.started = []  # processes this job started and has not reaped

    # --- the server ----------------------------------------------------------------
    def client(self):
        return [self.client_cmd, "--protocol=TCP", f"-h{self.host}", f"-P{self.port}", f"-u{self.user}",
                "--default-character-set=utf8mb4", "-N", "-B", self.db]  # fmt: skip

    def sql(self, query):
        r = subprocess.run(self.client() + ["-e", query], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        return r.stdout.strip()

    def check_table(self, what):
        n, distinct = map(int, self.sql(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {TABLE}").split())
        ok = n == distinct == self.rows
        print(f"   {what}: COUNT(*) {n}, COUNT(DISTINCT id) {distinct}: {'ok' if ok else 'WRONG'}", flush=True)
        if not ok:
            raise Failed(f"{what}: {TABLE} holds {n} rows, {distinct} distinct ids; expected {self.rows} of each")

    # --- one run ---------------------------------------------------------------------
    def start(self, args, log):
        f = open(log, "w")
        proc = subprocess.Popen([self.bin, *args, "--quiet"], stdout=subprocess.DEVNULL, stderr=f)
        f.close()
        self.started.append(proc)
        return proc, time.monotonic()

    def reap(self, proc):
        try:
            rc = proc.wait(timeout=RUN_LIMIT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            raise Failed(f"a run took over {RUN_LIMIT_S} s: killed")
        self.started.remove(proc)
        return rc

    def full(self, job, kind, rnd, args, log):
        """A run to its end; fails the job unless it exits 0."""
        proc, t0 = self.start(args, log)
        rc = self.reap(proc)
        wall = time.monotonic() - t0
        if rc != 0:
            raise Failed(f"{job} {kind} exited {rc}: {last_line(log)}")
        run = {"job": job, "kind": kind, "round": rnd, "wall": wall, "exit": rc, "resumed": resumed_of(log)}
        self.runs.append(run)
        print(f"   {kind}: {wall:.2f} s" + (f", resumed={run['resumed']}" if run["resumed"] else ""), flush=True)
        return run

    def killed(self, job, rnd, args, log, done, target, unit):
        """A run killed with SIGKILL once done() >= target; returns done()
        once the process is gone."""
        proc, t0 = self.start(args, log)
        seen, polls = 0, 0
        while True:
            if proc.poll() is not None:
                self.started.remove(proc)
                raise Failed(f"{job} round {rnd}: the run ended (exit {proc.returncode}) before {target} {unit} "
                             f"were done (last seen {seen}): use more rows")  # fmt: skip
            if time.monotonic() - t0 > RUN_LIMIT_S:
                os.kill(proc.pid, signal.SIGKILL)
                self.reap(proc)
                raise Failed(f"{job} round {rnd}: {target} {unit} not reached in {RUN_LIMIT_S} s")
            seen = done()
            polls += 1
            if seen >= target:
                os.kill(proc.pid, signal.SIGKILL)
                at = time.monotonic() - t0
                break
            time.sleep(0.001)
        rc = self.reap(proc)
        after = done()
        run = {"job": job, "kind": "killed", "round": rnd, "wall": at, "exit": rc, "seen": seen,
               "after": after, "polls": polls}  # fmt: skip
        self.runs.append(run)
        print(f"   killed after {at:.2f} s ({polls} polls): {seen} {unit} seen, {after} once it was gone", flush=True)
        return run

    # --- the jobs ----------------------------------------------------------------------
    def checkpoint(self, path):
        return ["--checkpoint", str(path)] + (["--checkpoint-every", self.every] if self.every else [])

    def mysql_job(self, csv):
        print(f"== CSV -> MySQL/MariaDB ({self.rows} rows into {TABLE}, {self.rounds} rounds)", flush=True)
        ckpt = self.md / "mysql.checkpoint"
        base = ["--source-type", "csv", "--csv-file", csv, "--sink-type", "mysql", "--db-url", self.url,
                "--db-table", TABLE, "--ignore-fields", IGNORED]  # fmt: skip
        args = base + self.checkpoint(ckpt)
        self.sql(f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} ({DDL}) {TABLE_OPTS}")
        self.full("mysql", "no checkpoint", 0, base, self.md / "mysql-plain.log")
        self.check_table("without --checkpoint")
        target = -(-self.rows * self.kill_at // 100)
        poller = Poller(self.client())
        try:
            for rnd in range(1, self.rounds + 1):
                print(f"-- round {rnd}", flush=True)
                self.sql(f"TRUNCATE TABLE {TABLE}")
                ckpt.unlink(missing_ok=True)
                self.full("mysql", "start over", rnd, args, self.md / f"mysql-{rnd}-full.log")
                self.check_table("start over")
                self.sql(f"TRUNCATE TABLE {TABLE}")
                if not marked_complete(ckpt):
                    raise Failed(f"{ckpt} is not marked complete after a complete run")
                ckpt.unlink()
                self.killed("mysql", rnd, args, self.md / f"mysql-{rnd}-killed.log",
                            lambda: int(poller.value(f"SELECT COUNT(*) FROM {TABLE}")), target, "rows")  # fmt: skip
                if not ckpt.exists():
                    raise Failed(f"the killed run left no {ckpt}")
                self.full("mysql", "resume", rnd, args, self.md / f"mysql-{rnd}-resume.log")
                self.check_table("after the resume")
        finally:
            poller.close()

    def file_job(self, csv):
        jsonl = Path(csv).with_suffix(".jsonl")
        if not (jsonl.exists() and count_lines(jsonl) == self.rows):
            print(f"== converting {csv} to {jsonl} (typed values)", flush=True)
            r = subprocess.run([self.bin, "--source-type", "csv", "--csv-file", csv, "--csv-infer-types",
                                "--sink-type", "file", "--output-file", f"{jsonl}.tmp", "--quiet"],
                               capture_output=True, text=True)  # fmt: skip
            if r.returncode != 0:
                raise Failed(f"converting {csv} exited {r.returncode}: {r.stderr.strip()[-500:]}")
            os.replace(f"{jsonl}.tmp", jsonl)
        print(f"== NDJSON -> JSON lines ({jsonl}, {self.rounds} rounds)", flush=True)
        ref, out = self.md / "reference.jsonl", self.md / "out.jsonl"
        partial = Path(f"{out}.partial")
        ckpt = self.md / "file.checkpoint"
        src = ["--source-type", "jsonl", "--jsonl-file", str(jsonl), "--sink-type", "file"]
        args = src + ["--output-file", str(out)] + self.checkpoint(ckpt)
        self.full("file", "no checkpoint", 0, src + ["--output-file", str(ref)], self.md / "file-plain.log")
        ref_bytes = ref.stat().st_size
        if count_lines(ref) != self.rows:
            raise Failed(f"the reference output {ref} holds {count_lines(ref)} lines, expected {self.rows}")
        target = -(-ref_bytes * self.kill_at // 100)

        def size():
            try:
                return partial.stat().st_size
            except FileNotFoundError:
                return 0

        def same(what):
            ok = subprocess.run(["cmp", "-s", str(ref), str(out)]).returncode == 0
            print(f"   {what}: output {'equals' if ok else 'DIFFERS FROM'} the reference", flush=True)
            if not ok:
                raise Failed(f"{what}: {out} differs from {ref} (cmp)")

        for rnd in range(1, self.rounds + 1):
            print(f"-- round {rnd}", flush=True)
            for p in (out, partial, ckpt):
                p.unlink(missing_ok=True)
            self.full("file", "start over", rnd, args, self.md / f"file-{rnd}-full.log")
            same("start over")
            out.unlink()
            if not marked_complete(ckpt):
                raise Failed(f"{ckpt} is not marked complete after a complete run")
            ckpt.unlink()
            run = self.killed("file", rnd, args, self.md / f"file-{rnd}-killed.log", size, target, "bytes")
            run["total"] = ref_bytes
            if not ckpt.exists():
                raise Failed(f"the killed run left no {ckpt}")
            self.full("file", "resume", rnd, args, self.md / f"file-{rnd}-resume.log")
            same("after the resume")
        for p in (ref, out, partial):
            p.unlink(missing_ok=True)
        return str(jsonl), ref_bytes

    # --- the whole -------------------------------------------------------------------
    def binary_id(self):
        r = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        with open(self.bin, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return f"{self.bin} ({(r.stdout or r.stderr).strip()}, sha256 {digest})"

    def run(self):
        if not (shutil.which("mysql") or shutil.which("mariadb")):
            common.need("mysql", "mariadb-client")
        self.client_cmd = "mysql" if shutil.which("mysql") else "mariadb"
        try:
            self.sql("SELECT 1")
        except RuntimeError as e:
            sys.exit(f"cannot reach MySQL/MariaDB at {self.url}: {e}")
        if self.bin:
            if not os.access(self.bin, os.X_OK):
                sys.exit(f"BENCH_BIN={self.bin} is not an executable file")
        else:
            common.build_release()
            self.bin = common.BIN
        csv, csv_bytes = common.make_csv(self.rows)
        shutil.rmtree(self.md, ignore_errors=True)
        self.md.mkdir(parents=True)
        load1 = common.loadavg()
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        failure = None
        jsonl, ref_bytes = "", 0
        try:
            self.mysql_job(csv)
            jsonl, ref_bytes = self.file_job(csv)
        except Failed as e:
            failure = str(e)
            print(f"FAILED: {failure}", flush=True)
        finally:
            for proc in list(self.started):  # only on an exception: stop what this job started
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            if os.environ.get("BENCH_MYSQL_KEEP", "0") != "1":
                try:
                    self.sql(f"DROP TABLE IF EXISTS {TABLE}")
                except RuntimeError as e:
                    print(f"cleanup: {e}", file=sys.stderr)
        (self.md / "runs.json").write_text(json.dumps({"runs": self.runs, "failure": failure}, indent=1))
        print()
        env = {
            "MD": self.md, "ROWS": self.rows, "ROUNDS": self.rounds, "KILL_AT": self.kill_at,
            "BUILD_ID": self.binary_id(), "LOADAVG": load1, "STARTED": started, "CSV": csv,
            "CSV_BYTES": csv_bytes, "JSONL": jsonl, "OUT_BYTES": ref_bytes, "TABLE": TABLE, "DDL": DDL,
            "SERVER": self.sql("SELECT VERSION()"), "IGNORED": IGNORED,
            "CHECKPOINT_EVERY": self.every,
        }  # fmt: skip
        status = common.report(report_resume.main, env, OUT / "report-resume.md")
        return 1 if failure else status


def run():
    return Job().run()


if __name__ == "__main__":
    raise SystemExit(run())
