"""Peers installed from PyPI into their own venv (bench-out/peers-venv):
DuckDB (the Python package and the standalone `duckdb` CLI from PyPI
`duckdb-cli`, pinned) and Polars for the CSV job, DuckDB (both) for the
NDJSON job. The Python peers are run as small scripts, so their timing
includes the interpreter's start, as a user running them would see; the
DuckDB CLI is one native process. `same_bytes` compares a peer's output
with pipeline-cli's byte for byte."""

import filecmp
import subprocess
import sys
from pathlib import Path

from .common import OUT

VENV = OUT / "peers-venv"
PY = VENV / "bin" / "python"
# The CLI's own binary, which the package's `bin/duckdb` (a Python script)
# starts: run directly, so that no Python start-up is timed.
DUCKDB_CLI_WRAPPER = VENV / "bin" / "duckdb"


def cli_binary():
    """The DuckDB CLI's binary in the venv (the wrapper until installed)."""
    found = sorted(VENV.glob("lib/python3*/site-packages/duckdb_cli/duckdb"))
    return found[0] if found else DUCKDB_CLI_WRAPPER


# The standalone CLI, pinned so that runs compare the same DuckDB build.
DUCKDB_CLI_PIN = "duckdb-cli==1.5.6"

POLARS = """import sys, polars as pl
pl.read_csv(sys.argv[1], infer_schema=False).write_ndjson(sys.argv[2])
"""

DUCKDB = """import sys, duckdb
duckdb.sql(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}', all_varchar=true)) TO '{sys.argv[2]}' (FORMAT json)")
"""

# The NDJSON job's records, typed as the file holds them: without the
# columns DuckDB would take created_at for a timestamp and rewrite it
# ("2026-04-08 04:47:06+00"). DECIMAL keeps the amounts exact, though
# DuckDB writes 4207.40 as 4207.4, so its bytes differ from the input's.
NDJSON_COLUMNS = (
    "{id: 'BIGINT', name: 'VARCHAR', email: 'VARCHAR', amount: 'DECIMAL(12,2)', "
    "created_at: 'VARCHAR', active: 'BOOLEAN', note: 'VARCHAR'}"
)


def _ndjson_copy(source, output):
    return (f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited', "
            f"columns={NDJSON_COLUMNS})) TO '{output}' (FORMAT json)")  # fmt: skip


DUCKDB_NDJSON = """import sys, duckdb
duckdb.sql(sys.argv[1])
"""


def _installed():
    if not (PY.exists() and cli_binary() != DUCKDB_CLI_WRAPPER):
        return False
    if subprocess.run([str(PY), "-c", "import duckdb, polars"], capture_output=True).returncode != 0:
        return False
    r = subprocess.run([str(PY), "-m", "pip", "show", "duckdb-cli"], capture_output=True, text=True)
    return f"Version: {DUCKDB_CLI_PIN.split('==')[1]}" in r.stdout


def ensure():
    """The venv with duckdb, polars and the pinned duckdb CLI; returns the versions."""
    if not _installed():
        print(f"== pip install duckdb polars {DUCKDB_CLI_PIN} into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "duckdb", "polars", DUCKDB_CLI_PIN], check=True)  # fmt: skip
    for name, text in [("polars", POLARS), ("duckdb", DUCKDB), ("duckdb_ndjson", DUCKDB_NDJSON)]:
        Path(OUT / f"peer_{name}.py").write_text(text)
    out = subprocess.run(
        [str(PY), "-c", "import duckdb, polars; print(duckdb.__version__, polars.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    cli = subprocess.run([str(cli_binary()), "--version"], capture_output=True, text=True, check=True)
    return {"duckdb": out[0], "polars": out[1], "duckdb-cli": cli.stdout.split()[0]}


def command(name, source, output):
    """The shell command that converts `source` (CSV, or NDJSON for the
    `*_ndjson` peers) to JSON lines in `output`."""
    if name == "duckdb-cli":
        sql = f"COPY (SELECT * FROM read_csv('{source}', all_varchar=true)) TO '{output}' (FORMAT json)"
        return f"{cli_binary()} -c \"{sql}\""
    if name == "duckdb-cli_ndjson":
        return f"{cli_binary()} -c \"{_ndjson_copy(source, output)}\""
    if name == "duckdb_ndjson":
        return f"{PY} {OUT}/peer_duckdb_ndjson.py \"{_ndjson_copy(source, output)}\""
    return f"{PY} {OUT}/peer_{name}.py {source} {output}"


def same_bytes(path, reference):
    """Whether `path` holds exactly the bytes of `reference`."""
    return filecmp.cmp(path, reference, shallow=False)
