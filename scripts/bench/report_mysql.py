"""The report of the CSV -> MySQL job: timings, rows/s, peak RSS, table checksums, DDL differences.

Read by the job that ran the tools, from the files it left in bench-out/.
"""

import csv
import json
import os
import platform
import re
import subprocess
import time
import zlib
from decimal import ROUND_HALF_UP, Decimal


def main(env):
    """Prints the report (Markdown); `env` holds what the job measured."""
    md = env["MD"]
    rows = int(env["ROWS"])
    in_bytes = int(env["INPUT_BYTES"])
    csv_path = env["CSV"]
    venv = env["VENV"]
    db = env["M_DB"]
    mysql = [
        env["MYSQL_CLIENT"], "--protocol=TCP", "-h" + env["M_HOST"], "-P" + env["M_PORT"],
        "-u" + env["M_USER"], "--default-character-set=utf8mb4", "-N", "-B", db,
    ]  # fmt: skip


    def sql(query):
        """Rows of a query, as lists of strings."""
        r = subprocess.run(mysql + ["-e", query], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "error")
        return [line.split("\t") for line in r.stdout.splitlines()]


    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None


    # --- the tools and their timings ---------------------------------------------------
    tools = []
    with open(f"{md}/tools.tsv") as f:
        for line in f:
            key, label, table, runs, warmup, cmd = line.rstrip("\n").split("\t")
            t = {"key": key, "label": label, "table": table, "runs": int(runs),
                 "warmup": int(warmup), "cmd": cmd, "result": None, "unavailable": None}  # fmt: skip
            if os.path.exists(f"{md}/{key}.unavailable"):
                with open(f"{md}/{key}.unavailable") as u:
                    t["unavailable"] = u.read().strip()
            else:
                with open(f"{md}/{key}.json") as j:
                    t["result"] = json.load(j)["results"][0]
            tools.append(t)
    by_key = {t["key"]: t for t in tools}
    base = by_key["pcli_load_data"]["result"]
    client = by_key["mysql_client"]["result"]

    # --- expected content, computed from the CSV (cached beside it) ---------------------
    COLS = ["id", "name", "email", "amount", "created_at", "active", "note"]
    DT = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z\Z")
    AMOUNT = re.compile(r"[1-9]\d*\.\d\d\Z|0\.\d\d\Z")


    def quote(v):
        """SQL QUOTE(): NULL unquoted, else quoted with \\ ' NUL and ^Z escaped."""
        if v is None:
            return "NULL"
        v = v.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0").replace("\x1a", "\\Z")
        return f"'{v}'"


    def expected_values(r):
        """A CSV row as the server prints the loaded columns (DATETIME with %f)."""
        id_, name, email, amount, created, active, note = r
        if amount and not AMOUNT.match(amount):
            amount = str(Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP))
        if created:
            m = DT.match(created)
            created = f"{m[1]} {m[2]}.000000" if m else None  # STR_TO_DATE gives NULL
        return [
            str(int(id_)), name, email or None, amount or None, created,
            None if active == "" else ("1" if active == "true" else "0"), note or None,
        ]  # fmt: skip


    def expected_sums():
        st = os.stat(csv_path)
        cache = f"{csv_path}.sum.json"
        stamp = [st.st_size, st.st_mtime_ns]
        try:
            with open(cache) as f:
                c = json.load(f)
            if c["stamp"] == stamp:
                return c
        except (OSError, ValueError, KeyError):
            pass
        n, total, cols = 0, 0, [0] * len(COLS)
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for r in reader:
                q = [quote(v) for v in expected_values(r)]
                total += zlib.crc32("|".join(q).encode())
                for i, s in enumerate(q):
                    cols[i] += zlib.crc32(s.encode())
                n += 1
        c = {"stamp": stamp, "rows": n, "total": total, "cols": cols}
        with open(cache, "w") as f:
            json.dump(c, f)
        return c


    expected = expected_sums()

    # --- what each table holds ------------------------------------------------------------
    EXPR = {c: f"QUOTE(`{c}`)" for c in COLS}
    EXPR["created_at"] = "QUOTE(DATE_FORMAT(`created_at`, '%Y-%m-%d %H:%i:%s.%f'))"
    SUMS_SQL = "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {}))), 0), {} FROM `{{}}`".format(
        ", ".join(EXPR[c] for c in COLS),
        ", ".join(f"COALESCE(SUM(CRC32({EXPR[c]})), 0)" for c in COLS),
    )


    def columns(table):
        return {
            name: (ctype, nullable, key)
            for name, ctype, nullable, key in sql(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS "
                f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
            )
        }


    ref_cols = columns(env["T_REF"])


    def ddl_diff(table):
        """How a table's columns differ from the benchmark DDL."""
        cols, out = columns(table), []
        for name in ref_cols.keys() | cols.keys():
            if name not in cols:
                out.append(f"{name} missing")
            elif name not in ref_cols:
                out.append(f"extra column {name} {cols[name][0]}")
            elif cols[name] != ref_cols[name]:
                (t1, n1, k1), (t2, n2, k2) = ref_cols[name], cols[name]
                d = []
                if t1 != t2:
                    d.append(f"{t2} (not {t1})")
                if n1 != n2:
                    d.append("NULL allowed" if n2 == "YES" else "NOT NULL")
                if k1 != k2:
                    d.append(f"key '{k2}' (not '{k1}')")
                out.append(f"{name}: {', '.join(d)}")
        return "; ".join(sorted(out)) or "same"


    failures = []
    for t in tools:
        if t["unavailable"]:
            continue
        try:
            got = [int(x) for x in sql(SUMS_SQL.format(t["table"]))[0]]
            t["count"], t["sum"], t["cols"] = got[0], got[1], got[2:]
            t["checksum_table"] = sql(f"CHECKSUM TABLE `{t['table']}`")[0][1]
            t["ddl"] = ddl_diff(t["table"])
        except RuntimeError as e:
            t["count"] = None
            t["error"] = str(e)
            failures.append(f"{t['label']}: {e}")
            continue
        t["content_ok"] = t["sum"] == expected["total"] and t["cols"] == expected["cols"]
        t["bad_cols"] = [c for c, a, b in zip(COLS, t["cols"], expected["cols"]) if a != b]
        if t["count"] != expected["rows"]:
            failures.append(f"{t['label']}: {t['count']:,} rows, expected {expected['rows']:,}")
        elif not t["content_ok"] and t["key"] != "ingestr":
            # ingestr makes its own table, so only its row count has to match.
            failures.append(f"{t['label']}: content differs in {', '.join(t['bad_cols']) or 'rows'}")
    for key in ("pcli_load_data", "pcli_load_data_b5000", "pcli_insert"):
        if by_key[key]["unavailable"]:
            failures.append(f"{by_key[key]['label']}: {by_key[key]['unavailable']}")

    # --- report -----------------------------------------------------------------------------
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    server = sql(
        "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@innodb_buffer_pool_size, "
        "@@log_bin, @@max_allowed_packet"
    )[0]
    ingestr_v = version([f"{venv}/bin/ingestr", "--version"]) or "ingestr unavailable"
    pymysql_v = version([f"{venv}/bin/python", "-c", "import importlib.metadata as m; print(m.version('PyMySQL'))"])
    runs, slow_runs = int(env["RUNS"]), int(env["SLOW_RUNS"])

    print("# pipeline-cli MySQL benchmark: CSV -> MariaDB/MySQL table\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} {platform.release()}; "
        f"load average at start {env['LOADAVG']} (shared machine: compare within this run only)"
    )
    print(f"- input: {csv_path}, {rows:,} rows, {in_bytes / 1e6:.1f} MB")
    print(
        f"- server: {server[0]} at {env['M_HOST']}:{env['M_PORT']}, same machine "
        f"(innodb_flush_log_at_trx_commit={server[1]}, innodb_buffer_pool_size="
        f"{int(server[2]) // 2**20} MiB, log_bin={server[3]}, max_allowed_packet={int(server[4]) // 2**20} MiB)"
    )
    print(f"- build: pipeline-cli {env['BUILD_ID']}")
    print(
        f"- versions: {version([env['MYSQL_CLIENT'], '--version']) or env['MYSQL_CLIENT']}; "
        f"{ingestr_v}; PyMySQL {pymysql_v or 'not installed'}; {version(['hyperfine', '--version'])}"
    )
    print(
        f"- runs: {runs} timed after 1 warm-up for pipeline-cli and the mysql client; "
        f"{slow_runs} timed, no warm-up, for the slow peers ingestr and executemany "
        f"(BENCH_MYSQL_SLOW_RUNS). Every run loads into a freshly dropped and re-created table "
        f"(not timed)."
    )
    print(f"- table DDL: `CREATE TABLE <t> ({env['DDL']}) {env['TABLE_OPTS']}`\n")

    print("## Throughput\n")
    print(
        "| tool | runs | mean s ± stddev | median s (min-max) | rows/s "
        "| rows/s ÷ pipeline-cli load-data | client CPU s (user+sys) |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in tools:
        r = t["result"]
        if r is None:
            print(f"| {t['label']} | - | unavailable: {t['unavailable']} | - | - | - | - |")
            continue
        mean, sd = r["mean"], r["stddev"] or 0.0
        ratio = f"{base['mean'] / mean:.2f}x" if base else "-"
        print(
            f"| {t['label']} | {len(r['times'])} | {mean:.2f} ± {sd:.2f} | {r['median']:.2f} "
            f"({r['min']:.2f}-{r['max']:.2f}) | {rows / mean:,.0f} | {ratio} | {r['user'] + r['system']:.2f} |"
        )
    print(
        "\nclient CPU is that of the tool's own processes (mean per run); "
        "the server's work is not in it."
    )

    print("\n## Target\n")
    pairs = []
    try:
        with open(f"{md}/pairs.tsv", encoding="utf-8") as f:
            for line in f:
                i, pw, cw, rss, cpu = line.split()
                pairs.append((float(pw), float(cw), int(rss), float(cpu)))
    except (OSError, ValueError):
        pairs = []
    print(
        "Measured on interleaved pairs (order swapped every pair, each on a fresh table): "
        "pipeline-cli with default flags against the mysql client's LOAD DATA LOCAL INFILE.\n"
    )
    print("| target | value | cross-check | goal | result |")
    print("|---|---|---|---|---|")
    if pairs:
        import statistics

        ratio = statistics.median(cw / pw for pw, cw, _, _ in pairs)
        med = statistics.median(c for _, c, _, _ in pairs) / statistics.median(p for p, _, _, _ in pairs)
        print(
            f"| rows/s ÷ the mysql client's, median of {len(pairs)} pairs "
            f"| {ratio:.2f}x | ratio of medians {med:.2f}x | >= 1.20x | {'PASS' if ratio >= 1.2 else 'FAIL'} |"
        )
        peak = max(r for _, _, r, _ in pairs) / 1024
        print(f"| pipeline-cli peak RSS (max over the pairs) | {peak:.1f} MiB | - | <= 100 MiB | {'PASS' if peak <= 100 else 'FAIL'} |")
        cpu = statistics.median(c for _, _, _, c in pairs)
        print(f"| pipeline-cli client CPU (median) | {cpu:.2f} s | - | - | - |")
        print("\n| pair | pipeline-cli s | mysql client s | client ÷ pipeline-cli |")
        print("|---|---|---|---|")
        for i, (pw, cw, _, _) in enumerate(pairs):
            print(f"| {i} | {pw:.2f} | {cw:.2f} | {cw / pw:.2f}x |")
    else:
        print("| rows/s ÷ the mysql client's | - | - | >= 1.20x | n/a (the pairs did not run) |")

    print("\n## Correctness\n")
    print(
        "Content checksum: `SUM(CRC32(CONCAT_WS('|', QUOTE(col), ...)))` over all 7 columns, "
        "created_at as `DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')`. "
        f"Expected from the CSV: {expected['rows']:,} rows, checksum {expected['total']}.\n"
    )
    print("| tool | table | rows | content checksum | = CSV | CHECKSUM TABLE | columns vs the DDL |")
    print("|---|---|---|---|---|---|---|")
    for t in tools:
        if t["unavailable"]:
            print(f"| {t['label']} | {t['table']} | - | - | - | - | not run |")
        elif t.get("count") is None:
            print(f"| {t['label']} | {t['table']} | - | - | NO | - | {t['error']} |")
        else:
            same = "yes" if t["content_ok"] and t["count"] == expected["rows"] else (
                "NO" + (f" ({', '.join(t['bad_cols'])} differ)" if t["bad_cols"] else "")
            )
            print(
                f"| {t['label']} | {t['table']} | {t['count']:,} | {t['sum']} | {same} "
                f"| {t['checksum_table']} | {t['ddl']} |"
            )
    print(
        "\nCHECKSUM TABLE depends on the column types, so it only agrees between tables "
        "with the same DDL."
    )
    ing = by_key["ingestr"]
    if not ing["unavailable"] and ing.get("count") is not None and not ing["content_ok"]:
        print(
            "\ningestr creates its own table, so only its row count has to match the CSV; "
            "its content difference is reported here, not counted as a failure."
        )
    print(f"\nCorrectness: {'FAIL: ' + '; '.join(failures) if failures else 'PASS'}")

    print("\n## Commands\n")
    print("Run from the repository root; each after dropping and re-creating its table.\n")
    for t in tools:
        r = t["result"]
        times = ", ".join(f"{x:.2f}" for x in r["times"]) if r else "-"
        print(f"- {t['label']} (table {t['table']}; run times s: {times})")
        print(f"  ```\n  {t['cmd']}\n  ```")

    raise SystemExit(1 if failures else 0)
