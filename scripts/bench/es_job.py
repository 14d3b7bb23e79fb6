"""Elasticsearch/OpenSearch index -> JSON lines, against elasticdump.

Starts both test servers (noida-db: Elasticsearch 8; osmem-server:
OpenSearch 3) from .venv/, loads BENCH_ES_DOCS documents into an index, and
times on each: pipeline-cli (point in time, one slice), --es-slices 2,
--es-mode scroll, a bare Python scroll loop on one keep-alive connection
(scripts/bench_es.py scroll: the lower bound against the server), and
elasticdump (npm, --searchBody with track_total_hits so it reads every
page). Each command gets BENCH_ES_WARMUP warm-ups and
BENCH_ES_RUNS timed runs (outputs removed before each, untimed), then one
more run for peak RSS and CPU and a check that the output holds every
document exactly once. elasticdump with its default search body is run once
more, untimed, to show what it reads without the total.

Knobs: BENCH_ES_DOCS (100000), BENCH_ES_RUNS (3, at least 3),
BENCH_ES_WARMUP (1).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import common, report_es
from .common import BIN, OUT

VENV_PY = ".venv/bin/python"


class Server:
    """A test server this run started, stopped by its PID."""

    def __init__(self, name, eo):
        self.name = name
        port = common.free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.data = None
        print(f"== starting {name} on 127.0.0.1:{port}", flush=True)
        log = open(eo / f"{name}.log", "w")
        if name == "noida-db":
            pkg = subprocess.run([VENV_PY, "-c", "import noida_db, os; print(os.path.dirname(noida_db.__file__))"],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            self.data = tempfile.mkdtemp(prefix="noida-data.", dir=eo.resolve())
            cmd = [f"{pkg}/noida-db", "start", "--only", "elasticsearch", "--host", "127.0.0.1",
                   "--elasticsearch-port", str(port), "--data-dir", self.data]  # fmt: skip
        else:
            binary = subprocess.run([VENV_PY, "-c", "import osmem_server; print(osmem_server.resolve_binary())"],
                                    capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            cmd = [binary, "-addr", f"127.0.0.1:{port}", "-no-stdin-watch"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if subprocess.run([sys.executable, "scripts/bench_es.py", "wait", self.url, "60"]).returncode != 0:
            self.stop()
            sys.exit(f"{name} did not start; see {eo}/{name}.log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.data:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None


class Job:
    def __init__(self):
        self.docs = common.knob("BENCH_ES_DOCS", 100_000, 1)
        self.runs = common.knob("BENCH_ES_RUNS", 3, 3)
        self.warmup = common.knob("BENCH_ES_WARMUP", 1, 0)
        self.eo = OUT / "es"
        self.pcli_out = OUT / "es.jsonl"
        self.ed_out = OUT / "elasticdump.json"
        self.loop_out = OUT / "es-loop.jsonl"
        self.outputs = [self.pcli_out, Path(f"{self.pcli_out}.partial"), self.ed_out, self.loop_out]

    def check(self, output, into=None):
        r = subprocess.run([sys.executable, "scripts/bench_es.py", "check", str(output), str(self.docs)],
                           capture_output=True, text=True)  # fmt: skip
        print(r.stdout, end="")
        if into:
            Path(into).write_text(r.stdout)

    def time_es(self, server, key, label, output, cmd):
        ident = f"{server}-{key}"
        with open(self.eo / "tools.tsv", "a") as f:
            f.write("\t".join([server, key, label, str(output), cmd]) + "\n")
        print(f"== {server}: timing {label} ({self.runs} runs after {self.warmup} warm-up)", flush=True)
        rm = "rm -f " + " ".join(map(str, self.outputs))
        if not common.hyperfine("--runs", self.runs, "--warmup", self.warmup, "--prepare", rm,
                                "--export-json", self.eo / f"{ident}.json", "-n", label, cmd):  # fmt: skip
            (self.eo / f"{ident}.json").unlink(missing_ok=True)
        print(f"== {server}: {label} once more, for peak RSS and the output check", flush=True)
        for p in self.outputs:
            p.unlink(missing_ok=True)
        with open(self.eo / f"{ident}.log", "w") as log:
            rc, _, cpu, rss = common.measure(cmd, stdout=log, stderr=log)
        (self.eo / f"{ident}.rss").write_text(f"{rss}\n")
        (self.eo / f"{ident}.cpu").write_text(f"{cpu:.2f}\n")
        if rc != 0:
            lines = [l for l in (self.eo / f"{ident}.log").read_text().splitlines() if l.strip()]
            why = (lines[-1] if lines else "exit status non-zero")[:300]
            (self.eo / f"{ident}.failed").write_text(why + "\n")
            print(f"== {label} failed: {why}")
        self.check(output, self.eo / f"{ident}.check")

    def run(self):
        common.need("hyperfine", "hyperfine")
        common.need("npm", "npm")
        if subprocess.run([VENV_PY, "-c", "import noida_db, osmem_server"], capture_output=True).returncode != 0:
            print("== .venv/ lacks the test servers: running scripts/services.sh", flush=True)
            subprocess.run(["scripts/services.sh"], check=True)
        ed = OUT / "npm/node_modules/.bin/elasticdump"
        if not os.access(ed, os.X_OK):
            print(f"== npm install --prefix {OUT}/npm elasticdump", flush=True)
            subprocess.run(["npm", "install", "--prefix", str(OUT / "npm"), "elasticdump"], check=True)
        common.build_release()
        shutil.rmtree(self.eo, ignore_errors=True)
        self.eo.mkdir(parents=True)
        load1 = common.loadavg()
        (self.eo / "tools.tsv").write_text("")
        (self.eo / "servers.tsv").write_text("")
        # elasticdump's default search body (from its --help), plus
        # track_total_hits so that it reads every page.
        ed_body = self.eo / "elasticdump-search.json"
        ed_body.write_text('{"query":{"match_all":{}},"stored_fields":["*"],"_source":true,"track_total_hits":true}\n')
        for name in ["noida-db", "osmem-server"]:
            server = Server(name, self.eo)
            try:
                self.time_server(server, ed, ed_body)
            finally:
                server.stop()
        print()
        env = {
            "EO": self.eo, "DOCS": self.docs, "RUNS": self.runs, "WARMUP": self.warmup,
            "LOADAVG": load1, "BUILD_ID": common.build_id(), "ED": ed,
        }  # fmt: skip
        return common.report(report_es.main, env, OUT / "report-es.md")

    def time_server(self, server, ed, ed_body):
        name, url = server.name, server.url
        info = subprocess.run([sys.executable, "scripts/bench_es.py", "info", url],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        with open(self.eo / "servers.tsv", "a") as f:
            f.write(f"{name}\t{url}\t{info}\n")
        print(f"== {name}: loading {self.docs} documents into index bench", flush=True)
        load = subprocess.run([sys.executable, "scripts/bench_es.py", "load", url, "bench", str(self.docs)],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        print(load, end="")
        (self.eo / f"{name}.load").write_text(load)
        pcli = (f"{BIN} --source-type elasticsearch --es-url {url} --es-index bench --sink-type file "
                f"--output-file {self.pcli_out} --quiet --es-page-size 5000")  # fmt: skip
        self.time_es(name, "pcli", "pipeline-cli", self.pcli_out, pcli)
        self.time_es(name, "pcli_s2", "pipeline-cli --es-slices 2", self.pcli_out, f"{pcli} --es-slices 2")
        self.time_es(name, "pcli_scroll", "pipeline-cli --es-mode scroll", self.pcli_out, f"{pcli} --es-mode scroll")
        self.time_es(name, "loop", "bare Python scroll loop", self.loop_out,
                     f"{sys.executable} scripts/bench_es.py scroll {url} bench {self.loop_out} 5000")  # fmt: skip
        ed_cmd = f"{ed} --input={url}/bench --output={{out}} --type=data --limit=5000 --overwrite --quiet"
        self.time_es(name, "elasticdump", "elasticdump", self.ed_out,
                     ed_cmd.format(out=self.ed_out) + f" --searchBody=@{ed_body}")  # fmt: skip
        # The same without --searchBody, into its own file, once (untimed).
        print(f"== {name}: elasticdump with its default search body, once (untimed)", flush=True)
        default_out = self.eo / f"{name}-elasticdump-default.json"
        default_out.unlink(missing_ok=True)
        with open(self.eo / f"{name}-elasticdump_default.log", "w") as log:
            rc, _, _, _ = common.measure(ed_cmd.format(out=default_out), stdout=log, stderr=log)
        (self.eo / f"{name}-elasticdump_default.exit").write_text(f"exit status {rc}\n")
        r = subprocess.run([sys.executable, "scripts/bench_es.py", "check", str(default_out), str(self.docs)],
                           capture_output=True, text=True)  # fmt: skip
        (self.eo / f"{name}-elasticdump_default.check").write_text(r.stdout)
        default_out.unlink(missing_ok=True)


def run():
    return Job().run()


if __name__ == "__main__":
    raise SystemExit(run())
