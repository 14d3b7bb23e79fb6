#!/usr/bin/env python3
"""Writes the benchmark CSV: id,name,email,amount,created_at,active,note.

Usage: gen_csv.py ROWS PATH
About 110 bytes a row; every 7th note is quoted with a comma and doubled quotes.
"""
import random
import sys


def main() -> None:
    rows, path = int(sys.argv[1]), sys.argv[2]
    rnd = random.Random(42)
    first = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Inès", "João"]
    last = ["Smith", "Müller", "Okafor", "Tanaka", "Rossi", "Nguyen", "García", "Kowalski"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,name,email,amount,created_at,active,note\n")
        buf = []
        for i in range(1, rows + 1):
            fn, ln = rnd.choice(first), rnd.choice(last)
            amount = f"{rnd.randint(0, 99999)}.{rnd.randint(0, 99):02d}"
            ts = f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z"
            active = "true" if i % 3 else "false"
            if i % 7 == 0:
                note = f'"order {i}, said ""ship it"" quickly"'
            else:
                note = f"plain note for customer number {i:07d}"
            buf.append(f"{i},{fn} {ln},{fn.lower()}.{i}@example.com,{amount},{ts},{active},{note}\n")
            if len(buf) >= 10000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


if __name__ == "__main__":
    main()
