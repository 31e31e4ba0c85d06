"""Time and peak memory of the hub erasing a withdrawn patient from a 10^6-row night's files.

The night is the one ``benchmarks/bench_tables.py`` builds (run it first with ``--rows 1000000 --modes
deid validate-valid``): its typical submission (``out_valid_1000000``, 149 MB: 10^6 reads, 125,000
patients, 375,000 manifest rows) and that submission's validated batch (``validated_1000000``, 221 MB:
Parquet tables, quarantine and warning lines, Data Docs). Both are copied into a scratch hub
(``OUT/submissions/site01/<night>/``, ``OUT/validated/site01/<night>/``) for each run, and a fresh Python
process calls :func:`cohortpool.pipeline.erasure.erase_withdrawn` twice for one of the night's
patients:

- the first pass erases (7 files rewritten, the patient's DICOM folder removed);
- the second pass finds nothing left: what every later load of the site pays for that night.

``--patients N`` adds N - 1 other withdrawn pseudonyms that are not in the night (a site that has
withdrawn many): the search then scans each file once for the pseudonym form instead of once per
patient. Peak memory is the process's maximum resident set (``getrusage``), imports included.

Usage: ``.venv/bin/python benchmarks/bench_erasure.py [--repeats 3] [--patients 1]``; prints one line per
run and the medians.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "tables"
SITE, NIGHT = "site01", "2025-03-01"

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from cohortpool.pipeline.erasure import erase_withdrawn
out, patients = Path(sys.argv[1]), json.loads(sys.argv[2])
times = []
for _ in range(2):
    start = time.perf_counter()
    summary = erase_withdrawn(out, "site01", patients)
    times.append((time.perf_counter() - start, summary.files, summary.erased))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first": times[0], "second": times[1], "peak_mb": peak}))
"""


def _one_patient(submission: Path) -> str:
    with (submission / "clinical.csv").open(encoding="utf-8", newline="") as stream:
        return str(next(csv.DictReader(stream))["patient_id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patients", type=int, default=1, help="withdrawn pseudonyms in all")
    args = parser.parse_args(argv)
    submission, batch = WORK / "out_valid_1000000", WORK / "validated_1000000"
    if not (submission.is_dir() and batch.is_dir()):
        print(
            "run benchmarks/bench_tables.py --rows 1000000 --modes deid validate-valid first", file=sys.stderr
        )
        return 2
    patients = [_one_patient(submission)] + [f"P{n:016X}" for n in range(args.patients - 1)]
    runs = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-erasure-") as scratch:
            out = Path(scratch) / "out"
            shutil.copytree(submission, out / "submissions" / SITE / NIGHT)
            shutil.copytree(batch, out / "validated" / SITE / NIGHT)
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(out), json.dumps(patients)],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(done.stdout)
            runs.append(run)
            print(
                f"run {repeat + 1}: first pass {run['first'][0]:.2f} s ({run['first'][1]} files, "
                f"{run['first'][2]} rows/lines/mentions), second pass {run['second'][0]:.2f} s, "
                f"peak {run['peak_mb']:.0f} MB"
            )
    print(
        f"median of {len(runs)}: first pass {statistics.median(r['first'][0] for r in runs):.2f} s, "
        f"second pass {statistics.median(r['second'][0] for r in runs):.2f} s, "
        f"peak {statistics.median(r['peak_mb'] for r in runs):.0f} MB "
        f"({len(patients)} withdrawn pseudonym(s))"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
