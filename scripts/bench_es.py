#!/usr/bin/env python3
"""Helpers for `scripts/bench.sh es` (standard library only).

  bench_es.py wait  URL [SECONDS]        wait until GET URL/ answers 200
  bench_es.py info  URL                  GET URL/ as one line of JSON
  bench_es.py load  URL INDEX DOCS       (re)create INDEX, _bulk DOCS documents
                                         in batches of 5000, _refresh, _count
  bench_es.py check FILE DOCS            check one output file (see check())
  bench_es.py scroll URL INDEX OUT [PAGE] the bare scroll loop (see cmd_scroll())

The documents are generated from their number alone (doc(i)), so `check` can
compare every output record with the document that was loaded, without
keeping a copy of the input:

  {"id": 17, "name": "Zoë Müller 17", "amount": 1234.56,
   "created_at": "2024-01-01T04:43:37Z", "tags": ["red", "grün"],
   "nested": {"level": 2, "note": "naïve café, 東京 #17"}}

_id is the decimal id ("17").
"""

import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BATCH = 5000

FIRST = ["Zoë", "José", "Ærø", "Łukasz", "Søren", "Ngọc", "Renée", "Ана", "陳", "Ümit"]
LAST = ["Müller", "García", "Dvořák", "O'Brien", "Smith", "Nguyễn", "Иванов", "山田", "Öztürk", "Lee"]
TAGS = ["red", "grün", "bleu", "赤", "azul", "жёлтый", "ροζ", "noir"]
NOTES = ["naïve café", "東京", "façade — \"quoted\"", "emoji 🚀", "tab\tand\\slash", "plain"]
EPOCH_2024 = 1704067200  # 2024-01-01T00:00:00Z


def doc(i):
    """Document number i: a few scalar fields, an array, a nested object, unicode."""
    n_tags = i % 4  # 0 to 3 tags, so some arrays are empty
    return {
        "id": i,
        "name": f"{FIRST[i % 10]} {LAST[(i // 10) % 10]} {i}",
        "amount": round((i * 7919) % 1000000 / 100, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH_2024 + i * 97)),
        "tags": [TAGS[(i + k) % len(TAGS)] for k in range(n_tags)],
        "nested": {"level": i % 5, "note": f"{NOTES[i % len(NOTES)]} #{i}"},
    }


def request(method, url, body=None, ctype="application/json"):
    """One HTTP request; returns the decoded JSON body, raising on a non-2xx status."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=300) as r:
        text = r.read()
    return json.loads(text) if text else None


def cmd_wait(url, seconds="30"):
    deadline = time.monotonic() + float(seconds)
    while True:
        try:
            request("GET", url + "/")
            return 0
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                print(f"{url} did not answer GET / within {seconds} s", file=sys.stderr)
                return 1
            time.sleep(0.1)


def cmd_info(url):
    print(json.dumps(request("GET", url + "/")))
    return 0


def cmd_load(url, index, docs):
    docs = int(docs)
    try:
        request("DELETE", f"{url}/{index}")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    request("PUT", f"{url}/{index}", "{}")
    t0 = time.monotonic()
    for start in range(0, docs, BATCH):
        lines = []
        for i in range(start, min(start + BATCH, docs)):
            lines.append(json.dumps({"index": {"_index": index, "_id": str(i)}}))
            lines.append(json.dumps(doc(i), ensure_ascii=False))
        resp = request("POST", f"{url}/_bulk", "\n".join(lines) + "\n", "application/x-ndjson")
        if resp.get("errors"):
            bad = next(it for it in resp["items"] if "error" in next(iter(it.values())))
            print(f"_bulk reported errors, first: {json.dumps(bad)[:500]}", file=sys.stderr)
            return 1
    request("POST", f"{url}/{index}/_refresh", "")
    count = request("GET", f"{url}/{index}/_count")["count"]
    took = time.monotonic() - t0
    print(f"loaded {count:,} documents into {index} in {took:.1f} s ({count / took:,.0f} docs/s)")
    if count != docs:
        print(f"_count says {count}, expected {docs}", file=sys.stderr)
        return 1
    return 0


def cmd_check(path, docs):
    """Prints one JSON line: lines, distinct _id, lines whose document differs
    from doc(_id), and ok (lines == distinct == DOCS, ids 0..DOCS-1, none differ).

    A pipeline-cli record is {"_id": ..., <_source fields>}; an elasticdump line
    is {"_index": ..., "_id": ..., "_source": {...}, ...}. Both are accepted."""
    docs = int(docs)
    lines, bad_json, differ = 0, 0, 0
    ids = set()
    first_diff = None
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        print(json.dumps({"file": path, "error": str(e), "ok": False}))
        return 0
    with f:
        for line in f:
            lines += 1
            try:
                rec = json.loads(line)
            except ValueError:
                bad_json += 1
                continue
            _id = rec.get("_id")
            ids.add(_id)
            src = rec["_source"] if "_source" in rec else {k: v for k, v in rec.items() if k != "_id"}
            try:
                want = doc(int(_id))
            except (TypeError, ValueError):
                want = None
            if src != want:
                differ += 1
                if first_diff is None:
                    first_diff = line.strip()[:300]
    ok = (
        lines == docs
        and len(ids) == docs
        and bad_json == 0
        and differ == 0
        and ids == {str(i) for i in range(docs)}
    )
    print(json.dumps({"file": path, "lines": lines, "distinct_ids": len(ids), "bad_json": bad_json,
                      "differ": differ, "first_diff": first_diff, "ok": ok}))  # fmt: skip
    return 0


def cmd_scroll(url, index, out, page="5000"):
    """The bare loop: the scroll API on one keep-alive connection, each hit
    written as one JSON line ({"_id": ..., <_source fields>}), nothing else
    (no retries, no checks): the lower bound a client can reach against the
    server."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    headers = {"Content-Type": "application/json"}

    def post(path, body):
        conn.request("POST", path, json.dumps(body), headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}: {data[:200]!r}")
        return json.loads(data)

    page = post(f"/{index}/_search?scroll=1m", {"size": int(page), "sort": ["_doc"]})
    with open(out, "w", encoding="utf-8") as f:
        while page["hits"]["hits"]:
            for hit in page["hits"]["hits"]:
                rec = {"_id": hit["_id"], **hit.get("_source", {})}
                f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            page = post("/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
    conn.request("DELETE", "/_search/scroll", json.dumps({"scroll_id": [page["_scroll_id"]]}), headers)
    conn.getresponse().read()
    return 0


def main(argv):
    cmds = {"wait": cmd_wait, "info": cmd_info, "load": cmd_load, "check": cmd_check, "scroll": cmd_scroll}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
