"""Peak memory and time of the site tables' pseudonymisation at 10^6 and 10^7 reads rows (issue 16 item 2).

A site drop is generated once per size under ``benchmarks/_work/tables/``: ``reads.csv`` with N rows (about
100 bytes a row, 8 reads a patient), ``clinical.csv`` with N / 8 patients, and a tiny ``dicom/`` folder
(3 small CT files) so ``cohortpool deid`` runs its whole site hop. Each measured command runs in its own
process; a sampler (psutil, every 20 ms) records the peak resident memory of the process and all its
children together (the de-identification worker pool included), with the wall time and the CPU time
(user + system of the process and its children, from ``getrusage``: on a shared machine the figure that
does not depend on the others' load).

Modes:

- ``tables``: :func:`cohortpool.features.pseudonymise_tables` alone, in a fresh Python process;
- ``deid``: ``cohortpool deid DROP OUT --site site01 --workers 1`` (de-identification, tables, manifest,
  k-anonymity, packaging with the sha256 of every file);
- ``before`` (``--before-src PATH``): the ``tables`` mode against another checkout's ``src/`` (e.g. the
  main branch's, which collected the rows in a list), for the before/after ratio; up to 2 x 10^6 rows;
- ``validate`` (``--validate``, the hub side, owned by the validation stage): ``cohortpool validate`` of
  the ``deid`` mode's submission. The tiny ``dicom/`` folder has studies for 3 patients only, so the
  hub quarantines nearly every read (no study of its modality): a worst case of the quarantine writer,
  not the typical night;
- ``validate-valid`` (the typical night): ``cohortpool validate`` of a copy of that submission whose
  ``imaging_manifest.csv`` has one series per (patient, modality) of the reads, so every row passes.

Usage: ``.venv/bin/python benchmarks/bench_tables.py [--rows 1000000 10000000] [--modes tables deid]
[--before-src OTHER_CHECKOUT/src] [--validate] [--repeats 1]`` (``--modes validate validate-valid`` re-uses
the ``deid`` mode's submission when it exists); prints a Markdown table and writes
``benchmarks/_work/tables/results.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "tables"
#: a 256-bit key for the benchmark only (cohortpool refuses weaker ones)
SECRET = "6b0d4f1e8a2c93d75e1f0a4b8c6d2e9f7a3b5c1d0e8f6a4b2c9d7e5f3a1b0c8d"
SITE = "site01"
NIGHT = "2025-03-01"
READS_PER_PATIENT = 8
#: the list-collecting code needed about 2.4 GB per 10^6 rows: not run beyond this on a shared machine
BEFORE_MAX_ROWS = 2_000_000
LEVELS = ("T11", "T12", "L1", "L2")
MODALITIES = ("XR", "CT", "MR")


def _clinical_row(n: int) -> list[str]:
    birth = f"19{40 + n % 40:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}"
    exam = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}"
    tumour = ("", "lung", "breast", "prostate")[n % 4]
    return [f"MRN{n:08d}", "Doe^Jane", birth, "MF"[n % 2], "1 Road", "555 0100", "160.5", "61.0",
            "23.68", "-2.7", "OP" if not tumour else "MET", "yes", tumour, exam]  # fmt: skip


def _read_row(n: int) -> list[str]:
    """A valid read (the hub's suites pass it, so ``validate`` measures loading, not warnings)."""
    patient = n // READS_PER_PATIENT
    study = (n % READS_PER_PATIENT) * 3 // READS_PER_PATIENT  # XR, then CT, then MR reads of a patient
    findings = ["yes" if (n >> bit) & 1 else "no" for bit in range(12)]
    if MODALITIES[study] == "XR":
        findings[1] = "no"  # marrow oedema is not seen on a radiograph
    grade = n % 4
    loss = (10.0, 22.5, 33.0, 55.0)[grade] + (n % 7) / 10  # inside the grade's height-loss range
    return [f"MRN{patient:08d}", f"ACC{patient:08d}{study}", MODALITIES[study], LEVELS[n % 4],
            "Dr Who", "2024-03-02", *findings, str(grade), f"{loss:.1f}"]  # fmt: skip


def _dicom(path: Path, number: int) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.4545.{number}.1"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.4545.{number}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.9.4545.{number}.2"
    ds.PatientID, ds.PatientName, ds.AccessionNumber = f"MRN{number:08d}", "Doe^Jane", f"ACC{number:08d}1"
    ds.StudyDate, ds.Modality, ds.PatientSex, ds.PatientAge = "20240301", "CT", "F", "070Y"
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(16 * 16 * 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def make_drop(rows: int) -> Path:
    """The site drop for ``rows`` reads rows (written once, reused)."""
    drop = WORK / f"drop_{rows}" / SITE / NIGHT
    done = drop / ".complete"
    if done.exists():
        return drop
    shutil.rmtree(drop, ignore_errors=True)
    drop.mkdir(parents=True)
    from cohortpool.contract.tables import CLINICAL, READS

    with (drop / "clinical.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CLINICAL.export_columns)
        writer.writerows(_clinical_row(n) for n in range(max(1, rows // READS_PER_PATIENT)))
    with (drop / "reads.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(READS.export_columns)
        writer.writerows(_read_row(n) for n in range(rows))
    for number in range(3):
        _dicom(drop / "dicom" / f"IM{number}.dcm", number)
    done.touch()  # hidden: cohortpool deid skips names starting with "."
    return drop


class Sampler:
    """Peak RSS of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = 0
        self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            family = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        sizes = []
        for proc in family:
            try:
                sizes.append(proc.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
        if sizes:
            self.peak_tree = max(self.peak_tree, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


_LIBRARY = """
import sys
from pathlib import Path
from cohortpool.deid import Pseudonymiser
from cohortpool.features import pseudonymise_tables
keys = Pseudonymiser(sys.argv[3].encode(), "site01")
result = pseudonymise_tables(Path(sys.argv[1]), Path(sys.argv[2]), keys)
print(getattr(result, "counts", result))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Sampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{command[:4]} exited {proc.returncode}: {stderr[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_tree_mb": round(sampler.peak_tree / 2**20, 1),
        "peak_process_mb": round(sampler.peak_single / 2**20, 1),
        "exit": proc.returncode,
        "stdout_tail": stdout[-400:],
    }


def valid_submission(submission: Path, out: Path) -> Path:
    """A copy of ``submission`` whose manifest has a series for every (patient, modality) of its reads."""
    import duckdb

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(submission, out)
    reads = str(submission / "reads.csv").replace("'", "''")
    manifest = str(out / "imaging_manifest.csv").replace("'", "''")
    # XR reads need a DX (or CR) series; MR series need their sequence parameters
    duckdb.connect().execute(f"""
        copy (
            with pairs as (select distinct patient_id, modality from read_csv('{reads}', all_varchar = true)),
            numbered as (
                select patient_id, case modality when 'XR' then 'DX' else modality end as modality,
                    row_number() over (order by patient_id, modality) as n
                from pairs
            )
            select '{SITE}' as site_id, patient_id, 'A' || lpad(n::varchar, 16, '0') as accession_id,
                '2.25.1' || n::varchar as study_uid, '2.25.2' || n::varchar as series_uid, modality,
                '2023-08-13' as study_date, '' as manufacturer, '' as model, '' as field_strength,
                case modality when 'MR' then 'T1' else '' end as sequence_family,
                case modality when 'MR' then '500' else '' end as repetition_time,
                case modality when 'MR' then '15' else '' end as echo_time,
                '' as slice_thickness, '' as pixel_spacing, '16' as image_rows, '16' as image_columns,
                '1' as instance_count, n::varchar as source_row
            from numbered order by n
        ) to '{manifest}' (header, delimiter ',', quote '')
    """)  # fmt: skip
    return out


def run_mode(mode: str, rows: int, drop: Path, before_src: Path | None) -> dict[str, Any]:
    out = WORK / f"out_{mode}_{rows}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(WORK / f"vault_{rows}", ignore_errors=True)
    config = WORK / "cohortpool.yaml"  # the registry declares the benchmark's one site
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"sites:\n  - site_id: {SITE}\n", encoding="utf-8")
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET, "COHORTPOOL_CONFIG": str(config)}
    env["OPENBLAS_NUM_THREADS"] = "1"
    python = sys.executable
    if mode in ("tables", "before"):
        if mode == "before":
            assert before_src is not None
            env["PYTHONPATH"] = str(before_src)
        return measure([python, "-c", _LIBRARY, str(drop), str(out), SECRET], env)
    if mode == "deid":
        vault = WORK / f"vault_{rows}"
        command = [python, "-m", "cohortpool", "deid", str(drop), str(out), "--site", SITE,
                   "--vault", str(vault), "--workers", "1"]  # fmt: skip
        return measure(command, env)
    if mode in ("validate", "validate-valid"):
        submission = WORK / f"out_deid_{rows}"
        if not (submission / "submission.json").exists():
            run_mode("deid", rows, drop, before_src)
        if mode == "validate-valid":
            submission = valid_submission(submission, WORK / f"out_valid_{rows}")
        validated = WORK / f"validated_{rows}"
        shutil.rmtree(validated, ignore_errors=True)
        return measure(
            [python, "-m", "cohortpool", "validate", str(submission), "--out", str(validated)], env
        )
    raise ValueError(mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--modes", nargs="+", default=["tables", "deid"])
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument("--validate", action="store_true", help="also measure cohortpool validate")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    modes = list(args.modes)
    if args.before_src is not None:
        modes.insert(0, "before")
    if args.validate:
        modes.append("validate")
    WORK.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for rows in args.rows:
        drop = make_drop(rows)
        size = (drop / "reads.csv").stat().st_size / 2**20
        for mode in modes:
            if mode == "before" and rows > BEFORE_MAX_ROWS:
                print(f"before: skipped at {rows:,} rows (about 2.4 GB per 10^6 rows)", flush=True)
                continue
            runs = [run_mode(mode, rows, drop, args.before_src) for _ in range(args.repeats)]
            row = {
                "rows": rows,
                "reads_csv_mb": round(size, 1),
                "mode": mode,
                "wall_s": statistics.median(r["wall_s"] for r in runs),
                "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                "peak_tree_mb": max(r["peak_tree_mb"] for r in runs),
                "peak_process_mb": max(r["peak_process_mb"] for r in runs),
                "runs": runs,
            }
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n| reads rows | reads.csv MB | mode | wall s | CPU s | peak RSS, process tree MB | largest MB |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        cells = ("reads_csv_mb", "mode", "wall_s", "cpu_s", "peak_tree_mb", "peak_process_mb")
        print(f"| {row['rows']:,} | " + " | ".join(str(row[c]) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
