#!/usr/bin/env python3
"""Loads the benchmark CSV into MySQL/MariaDB the plain Python way: the csv
module, PyMySQL, `cursor.executemany(INSERT ...)` in batches, one commit per
batch. It is the "hand-written loader" peer in `scripts/bench.sh mysql`.

Usage:
  bench_executemany.py (--csv PATH | --jsonl PATH) --table NAME [--host 127.0.0.1] [--port 3306]
                       [--user root] [--password ''] [--database test]
                       [--batch 1000]

The table must exist with the columns id,name,email,amount,created_at,active,
note. Values are converted the way the benchmark's LOAD DATA statement does:
created_at `2026-04-08T04:47:06Z` becomes the DATETIME 2026-04-08 04:47:06
(UTC, as written), active becomes 1 for `true` and 0 otherwise; an empty
field becomes NULL. With --jsonl, one JSON object per line with those keys
(json.loads, decimals as Decimal so no digit is lost; true/false as 1/0).
Prints the number of rows inserted.
"""
import argparse
import csv
import json
import sys
from datetime import datetime
from decimal import Decimal

import pymysql

COLUMNS = ("id", "name", "email", "amount", "created_at", "active", "note")


def convert(row):
    """One CSV row -> the parameters of the INSERT."""
    id_, name, email, amount, created_at, active, note = row
    if created_at:
        # Same as STR_TO_DATE(@created_at, '%Y-%m-%dT%H:%i:%sZ').
        created = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ")
    else:
        created = None
    return (
        int(id_),
        name,
        email or None,
        amount or None,  # sent as text; the server converts to DECIMAL exactly
        created,
        None if active == "" else int(active == "true"),
        note or None,
    )


def convert_json(line):
    """One NDJSON line -> the parameters of the INSERT."""
    d = json.loads(line, parse_float=Decimal)
    created = d.get("created_at")
    active = d.get("active")
    return (
        d["id"],
        d["name"],
        d.get("email"),
        d.get("amount"),
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ") if created else None,
        None if active is None else int(bool(active)),
        d.get("note"),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv")
    src.add_argument("--jsonl")
    ap.add_argument("--table", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3306)
    ap.add_argument("--user", default="root")
    ap.add_argument("--password", default="")
    ap.add_argument("--database", default="test")
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()

    conn = pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        database=args.database,
        charset="utf8mb4",
        autocommit=False,
    )
    # PyMySQL rewrites executemany of a plain INSERT ... VALUES (...) into
    # multi-row INSERT statements (up to its max_stmt_length).
    sql = "INSERT INTO `{}` ({}) VALUES ({})".format(
        args.table.replace("`", "``"),
        ", ".join(COLUMNS),
        ", ".join(["%s"] * len(COLUMNS)),
    )
    total = 0
    with conn, open(args.csv or args.jsonl, newline="", encoding="utf-8") as f:
        if args.csv:
            reader = csv.reader(f)
            header = next(reader)
            if tuple(header) != COLUMNS:
                print(f"unexpected header {header}, want {list(COLUMNS)}", file=sys.stderr)
                return 2
            params = map(convert, reader)
        else:
            params = (convert_json(line) for line in f if line.strip())
        cur = conn.cursor()
        batch = []
        for row in params:
            batch.append(row)
            if len(batch) >= args.batch:
                cur.executemany(sql, batch)
                conn.commit()
                total += len(batch)
                batch.clear()
        if batch:
            cur.executemany(sql, batch)
            conn.commit()
            total += len(batch)
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
