"""`python3 -m scripts.bench [csv|mysql|es|es-mysql|ndjson|resume]` from the repository root."""

import sys

from . import csv_job, es_job, es_mysql_job, mysql_job, ndjson_job, resume_job

JOBS = {"csv": csv_job, "jsonl": csv_job, "mysql": mysql_job, "es": es_job, "es-mysql": es_mysql_job, "ndjson": ndjson_job,
        "resume": resume_job}


def main(argv):
    mode = argv[1] if len(argv) > 1 else "csv"
    if mode not in JOBS or len(argv) > 2:
        print("usage: scripts/bench.sh [csv|mysql|es|es-mysql|ndjson|resume]", file=sys.stderr)
        return 2
    return JOBS[mode].run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
