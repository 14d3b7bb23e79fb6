"""Peers installed from PyPI into their own venv (bench-out/peers-venv):
DuckDB and Polars for the CSV job. Each is run as a small script, so the
timing includes the interpreter's start, as a user running them would see."""

import subprocess
import sys
from pathlib import Path

from .common import OUT

VENV = OUT / "peers-venv"
PY = VENV / "bin" / "python"

POLARS = """import sys, polars as pl
pl.read_csv(sys.argv[1], infer_schema=False).write_ndjson(sys.argv[2])
"""

DUCKDB = """import sys, duckdb
duckdb.sql(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}', all_varchar=true)) TO '{sys.argv[2]}' (FORMAT json)")
"""


def ensure():
    """The venv with duckdb and polars; returns the versions."""
    have = PY.exists() and subprocess.run([str(PY), "-c", "import duckdb, polars"], capture_output=True).returncode == 0
    if not have:
        print(f"== pip install duckdb polars into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "duckdb", "polars"], check=True)
    for name, text in [("polars", POLARS), ("duckdb", DUCKDB)]:
        Path(OUT / f"peer_{name}.py").write_text(text)
    out = subprocess.run(
        [str(PY), "-c", "import duckdb, polars; print(duckdb.__version__, polars.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return {"duckdb": out[0], "polars": out[1]}


def command(name, csv, output):
    """The shell command that converts `csv` to JSON lines in `output`."""
    return f"{PY} {OUT}/peer_{name}.py {csv} {output}"
