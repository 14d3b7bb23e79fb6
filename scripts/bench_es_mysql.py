#!/usr/bin/env python3
"""Copies an Elasticsearch/OpenSearch index into a MySQL/MariaDB table the
way a typical hand-written pipeline does: the scroll API in pages of 1,000
on one keep-alive HTTP connection, each page inserted with PyMySQL's
`cursor.executemany` on one connection and committed. It is the peer of
pipeline-cli in `scripts/bench.sh es-mysql`.

Usage:
  bench_es_mysql.py URL INDEX TABLE [--page 1000] [--host 127.0.0.1]
                    [--port 3306] [--user root] [--password ''] [--database test]

The documents are those of `scripts/bench_es.py load`; the table (it must
exist) has the columns _id, id, name, amount, created_at, tags, nested.
created_at `2024-01-01T04:43:37Z` becomes the DATETIME 2024-01-01 04:43:37
(UTC), tags and nested are stored as compact JSON text. Prints the number of
rows inserted.
"""
import argparse
import http.client
import json
import sys
import urllib.parse
from datetime import datetime

import pymysql

COLUMNS = ("_id", "id", "name", "amount", "created_at", "tags", "nested")


def row(hit):
    """One search hit -> the parameters of the INSERT."""
    s = hit["_source"]
    created = s.get("created_at")
    return (
        hit["_id"],
        s.get("id"),
        s.get("name"),
        s.get("amount"),
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ") if created else None,
        json.dumps(s.get("tags"), ensure_ascii=False, separators=(",", ":")),
        json.dumps(s.get("nested"), ensure_ascii=False, separators=(",", ":")),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("index")
    ap.add_argument("table")
    ap.add_argument("--page", type=int, default=1000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3306)
    ap.add_argument("--user", default="root")
    ap.add_argument("--password", default="")
    ap.add_argument("--database", default="test")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.url)
    es = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    headers = {"Content-Type": "application/json"}

    def post(path, body):
        es.request("POST", path, json.dumps(body), headers)
        r = es.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}: {data[:200]!r}")
        return json.loads(data)

    db = pymysql.connect(host=args.host, port=args.port, user=args.user, password=args.password,
                         database=args.database, charset="utf8mb4", autocommit=False)  # fmt: skip
    sql = "INSERT INTO `{}` ({}) VALUES ({})".format(
        args.table.replace("`", "``"),
        ", ".join(f"`{c}`" for c in COLUMNS),
        ", ".join(["%s"] * len(COLUMNS)),
    )
    total = 0
    with db:
        cur = db.cursor()
        page = post(f"/{args.index}/_search?scroll=1m", {"size": args.page, "sort": ["_doc"]})
        while page["hits"]["hits"]:
            cur.executemany(sql, [row(hit) for hit in page["hits"]["hits"]])
            db.commit()
            total += len(page["hits"]["hits"])
            page = post("/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
        es.request("DELETE", "/_search/scroll", json.dumps({"scroll_id": [page["_scroll_id"]]}), headers)
        es.getresponse().read()
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
