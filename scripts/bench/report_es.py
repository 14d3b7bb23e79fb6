"""The report of the Elasticsearch -> JSON lines job: timings, docs/s, CPU, peak RSS, output checks.

Read by the job that ran the tools, from the files it left in bench-out/.
"""

import json
import os
import platform
import subprocess
import time


def main(env):
    """Prints the report (Markdown); `env` holds what the job measured."""
    eo = env["EO"]
    docs = int(env["DOCS"])


    def read(path, default=None):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return default


    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None


    # --- servers and tools -----------------------------------------------------------------
    servers = {}
    with open(f"{eo}/servers.tsv", encoding="utf-8") as f:
        for line in f:
            name, url, root = line.rstrip("\n").split("\t")
            root = json.loads(root)
            v = root.get("version", {})
            servers[name] = {
                "url": url,
                "api": f"{v.get('distribution', 'elasticsearch')} {v.get('number', '?')}",
                "name": root.get("name", "?"),
                "load": read(f"{eo}/{name}.load", "?"),
            }
    for name, s in servers.items():  # the PyPI package's version
        s["pkg"] = version([".venv/bin/python", "-c", f"import importlib.metadata as m; print(m.version('{name}'))"])

    tools = []
    with open(f"{eo}/tools.tsv", encoding="utf-8") as f:
        for line in f:
            server, key, label, output, cmd = line.rstrip("\n").split("\t")
            ident = f"{server}-{key}"
            t = {"server": server, "key": key, "label": label, "output": output, "cmd": cmd}
            res = read(f"{eo}/{ident}.json")
            t["result"] = json.loads(res)["results"][0] if res else None
            rss = read(f"{eo}/{ident}.rss")
            t["rss"] = int(rss.split()[-1]) / 1024 if rss and rss.split()[-1].isdigit() else None
            t["failed"] = read(f"{eo}/{ident}.failed")
            t["check"] = json.loads(read(f"{eo}/{ident}.check", '{"ok": false, "error": "not checked"}'))
            tools.append(t)

    failures = []
    for t in tools:
        c = t["check"]
        if t["result"] is None:
            failures.append(f"{t['server']}: {t['label']} failed in hyperfine")
        if t["failed"]:
            failures.append(f"{t['server']}: {t['label']} failed: {t['failed']}")
        if not c["ok"]:
            why = c.get("error") or (
                f"{c['lines']:,} lines, {c['distinct_ids']:,} distinct _id, "
                f"{c['bad_json']} invalid, {c['differ']} differ from the loaded documents"
            )
            failures.append(f"{t['server']}: {t['label']} output {t['output']}: {why}")

    # --- report -------------------------------------------------------------------------------
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    runs, warmup = int(env["RUNS"]), int(env["WARMUP"])

    print("# pipeline-cli Elasticsearch benchmark: index -> JSON lines\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {mem_gib:.0f} GiB, "
        f"{platform.system()} {platform.release()}; load average at start {env['LOADAVG']} "
        "(shared machine: compare within this run only)"
    )
    print(
        f"- documents: {docs:,} in index `bench` (1 index, default settings), loaded with _bulk "
        "in batches of 5000, then _refresh; fields id, name, amount, created_at, tags (array), "
        "nested {level, note}, non-ASCII text"
    )
    for name, s in servers.items():
        print(
            f"- server {name} {s['pkg'] or '?'}: GET / says {s['api']} (name {s['name']}), "
            f"{s['url']}, same machine; {s['load']}"
        )
    print(f"- build: pipeline-cli {env['BUILD_ID']}")
    print(
        f"- versions: elasticdump {version([env['ED'], '--version']) or '?'} "
        f"(node {version(['node', '--version']) or '?'}); {version(['hyperfine', '--version'])}"
    )
    print(
        "- protocols: pipeline-cli reads with a point in time and search_after on both servers "
        "(--es-mode auto), or with the scroll API (--es-mode scroll), 5000 documents a page, one "
        "reader (two with --es-slices 2); elasticdump reads with the scroll API (its default; "
        "scroll=10m), --limit=5000 documents a page, one request at a time"
    )
    print(
        f"- runs: {runs} timed per command after {warmup} warm-up (hyperfine), output files "
        "removed before every run (untimed); peak RSS from one extra run under GNU time, "
        "whose output is the one checked"
    )

    for name in servers:
        rows = [t for t in tools if t["server"] == name]
        ed = next((t["result"] for t in rows if t["key"] == "elasticdump"), None)
        print(f"\n## {name} ({servers[name]['api']})\n")
        print(
            "| tool | mean s ± stddev | median s (min-max) | docs/s | docs/s ÷ elasticdump "
            "| client CPU s (user+sys) | peak RSS MiB | output |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for t in rows:
            r, c = t["result"], t["check"]
            out = "ok" if c["ok"] else "WRONG"
            if "lines" in c:
                out += f": {c['lines']:,} lines, {c['distinct_ids']:,} distinct _id"
            elif c.get("error"):
                out += f": {c['error']}"
            rss = f"{t['rss']:.1f}" if t["rss"] is not None else "-"
            if r is None:
                print(f"| {t['label']} | failed | - | - | - | - | {rss} | {out} |")
                continue
            mean, sd = r["mean"], r["stddev"] or 0.0
            ratio = f"{ed['mean'] / mean:.2f}x" if ed else "-"
            print(
                f"| {t['label']} | {mean:.2f} ± {sd:.2f} | {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}) "
                f"| {docs / mean:,.0f} | {ratio} | {r['user'] + r['system']:.2f} | {rss} | {out} |"
            )

    print("\n## Targets\n")
    print(
        "pipeline-cli --es-mode scroll (the protocol elasticdump and the loop use) against, in the "
        "same run: client CPU <= 1/5 of elasticdump's, wall <= 1.05x the bare loop's, peak RSS <= 50 MiB "
        "(and the same RSS limit for the default mode).\n"
    )
    print("| server | CPU ÷ elasticdump's | wall ÷ bare loop's | peak RSS MiB (scroll / default) |")
    print("|---|---|---|---|")
    for name in servers:
        by = {t["key"]: t for t in tools if t["server"] == name}
        sc, ed, lp, df = (by.get(k) for k in ["pcli_scroll", "elasticdump", "loop", "pcli"])

        def cpu(t):
            return t["result"]["user"] + t["result"]["system"] if t and t["result"] else None

        def mean(t):
            return t["result"]["mean"] if t and t["result"] else None

        cells = []
        if cpu(sc) and cpu(ed):
            r = cpu(sc) / cpu(ed)
            cells.append(f"{cpu(sc):.2f} / {cpu(ed):.2f} = 1/{1 / r:.1f} {'PASS' if r <= 0.2 else 'MISS'}")
        else:
            cells.append("-")
        if mean(sc) and mean(lp):
            r = mean(sc) / mean(lp)
            cells.append(f"{mean(sc):.2f} / {mean(lp):.2f} = {r:.2f}x {'PASS' if r <= 1.05 else 'MISS'}")
        else:
            cells.append("-")
        rss = [t["rss"] for t in (sc, df) if t and t["rss"] is not None]
        cells.append(
            " / ".join(f"{x:.1f}" for x in rss) + (" PASS" if rss and max(rss) <= 50 else " MISS")
        )
        print(f"| {name} | " + " | ".join(cells) + " |")

    print(
        "\ndocs/s ÷ elasticdump is this tool's docs/s divided by elasticdump's against the same "
        "server (= elasticdump mean s ÷ this tool's mean s). Client CPU is the tool's own "
        "processes (mean per run); the server's work is not in it."
    )
    print(
        "\nelasticdump is given its default search body plus `\"track_total_hits\": true`: it stops "
        "at hits.total of the first scroll page, which Elasticsearch and OpenSearch count exactly "
        "for a scroll, but these two test servers cap at 10,000 (relation gte). Its default body, "
        "run once per server (untimed, not counted as a failure):"
    )
    for name in servers:
        c = json.loads(read(f"{eo}/{name}-elasticdump_default.check", '{"error": "not run"}'))
        got = c.get("error") or f"{c['lines']:,} lines, {c['distinct_ids']:,} distinct _id"
        print(f"- {name}: {got} of {docs:,} documents, {read(f'{eo}/{name}-elasticdump_default.exit', '?')}")
    print(
        "\nOutput check: exactly as many lines as documents, as many distinct _id values "
        "(0 .. N-1), every line valid JSON, every document equal to the one loaded "
        "(pipeline-cli: the fields after _id; elasticdump: _source)."
    )
    print(f"\nCorrectness: {'FAIL: ' + '; '.join(failures) if failures else 'PASS'}")

    print("\n## Commands\n")
    print("Run from the repository root (the ports are this run's).\n")
    for t in tools:
        r = t["result"]
        times = ", ".join(f"{x:.2f}" for x in r["times"]) if r else "-"
        print(f"- {t['server']}, {t['label']} (run times s: {times})")
        print(f"  ```\n  {t['cmd']}\n  ```")

    raise SystemExit(1 if failures else 0)
