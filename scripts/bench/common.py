"""What every benchmark job shares: installs, the release build, the input
CSV, timing with hyperfine, peak RSS and CPU of one run, free ports, and
writing a report to the terminal and to bench-out/."""

import contextlib
import hashlib
import io
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path("bench-out")
BIN = "target/release/pipeline-cli"

_apt_updated = False


def need(command, package):
    """Installs a Debian package only when its command is missing."""
    global _apt_updated
    if shutil.which(command) or (command.startswith("/") and os.access(command, os.X_OK)):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"== installing {package} (for {command})", flush=True)
    if not _apt_updated:
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        _apt_updated = True
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", package], check=True)


def knob(name, default, minimum):
    """An integer setting from the environment, at least `minimum` (exit 2 if not)."""
    text = os.environ.get(name, str(default))
    if not text.isdigit() or int(text) < minimum:
        print(f"{name} must be an integer >= {minimum}, got '{text}'", file=sys.stderr)
        sys.exit(2)
    return int(text)


def build_release():
    print("== building release binary", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    if not os.access(BIN, os.X_OK):
        sys.exit(f"missing {BIN} after build")


def make_csv(rows):
    """The benchmark CSV of `rows` rows (generated once, then cached in
    bench-out/; bench-1m.csv for a million rows); returns (path, bytes)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / ("bench-1m.csv" if rows == 1_000_000 else f"bench-{rows}.csv")
    cached = False
    if path.exists():
        with open(path, "rb") as f:
            cached = sum(1 for _ in f) == rows + 1
    if cached:
        print(f"== using cached {path}", flush=True)
    else:
        print(f"== generating {path} ({rows} rows)", flush=True)
        partial = f"{path}.partial"
        subprocess.run([sys.executable, "scripts/gen_csv.py", str(rows), partial], check=True)
        os.replace(partial, path)
    return str(path), path.stat().st_size


def build_id():
    """Which build is measured: commit, local changes, a hash of the binary."""
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    ident = r.stdout.strip() or "unknown"
    r = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
        capture_output=True,
        text=True,
    )
    if r.stdout.strip():
        ident += " + local changes"
    with open(BIN, "rb") as f:
        ident += f", binary sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
    return ident


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hyperfine(*args):
    """Runs hyperfine; True when every run succeeded."""
    return subprocess.run(["hyperfine", *map(str, args)]).returncode == 0


def measure(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
    """Runs `command` (a shell-style string) once: (exit status, wall s,
    CPU s (user + system), peak RSS KiB). The command is started by GNU
    time, whose peak RSS is the command's own: a process forked from this
    Python interpreter inherits the interpreter's high-water mark (about
    30 MiB), which its own rusage would report instead of a smaller one."""
    need("/usr/bin/time", "time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.monotonic()
        child = subprocess.Popen(["/usr/bin/time", "-o", rss.name, "-f", "%M"] + shlex.split(command),
                                 stdout=stdout, stderr=stderr)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        lines = [l for l in rss.read().split() if l.isdigit()]
    peak = int(lines[-1]) if lines else usage.ru_maxrss
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, peak


def report(main, env, path):
    """Runs a report's main(env), printing it and writing it to `path`;
    returns the exit status (1 when the report raised)."""
    buf = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(buf):
        try:
            main({k: str(v) for k, v in env.items()})
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # noqa: BLE001 - the report says what broke
            print(f"\nthe report failed: {e!r}")
            status = 1
    text = buf.getvalue()
    print(text, end="")
    Path(path).write_text(text)
    return status
