"""A drop whose file and folder names are not UTF-8 (``caf\\xe9.dcm`` from a Latin-1 PACS export).

Through ``cohortpool deid`` (a subprocess, as a site runs it): nothing crashes, the image is
de-identified, the non-DICOM file is quarantined under its own name (bytes), and the ledger, which
must stay valid UTF-8, records every name readably (undecodable bytes as ``\\xNN``).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from config_support import TEST_SECRET
from dicom_support import tiny_ct

NIGHT = "2024-05-06"


def test_names_that_are_not_utf8_are_processed_or_quarantined_and_recorded_readably(tmp_path: Path) -> None:
    drop = tmp_path / "site01" / NIGHT
    dicom = os.fsencode(drop / "dicom")
    os.makedirs(dicom + b"/\xc0\xc1 export")
    with open(dicom + b"/caf\xe9.dcm", "wb") as handle:  # Latin-1 "café"
        handle.write(tiny_ct(sop_uid="1.2.3.1.1"))
    with open(dicom + b"/\xc0\xc1 export/IM\xff.dcm", "wb") as handle:
        handle.write(tiny_ct(sop_uid="1.2.3.1.2"))
    with open(dicom + b"/notes\xe9.txt", "wb") as handle:
        handle.write(b"not dicom at all")
    out, vault = tmp_path / "out", tmp_path / "vault"
    env = {**os.environ, "COHORTPOOL_SECRET": TEST_SECRET}
    command = [sys.executable, "-m", "cohortpool", "deid", str(drop), str(out), "--site", "site01",
               "--vault", str(vault), "--workers", "2"]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 1, proc.stderr  # done, one file quarantined
    assert "Traceback" not in proc.stderr
    ledger_bytes = (vault / "ledger" / f"{NIGHT}.csv").read_bytes()
    ledger_bytes.decode("utf-8")  # valid UTF-8
    rows = {r["input_path"]: r for r in csv.DictReader(ledger_bytes.decode("utf-8").splitlines())}
    assert set(rows) == {"dicom/caf\\xe9.dcm", "dicom/\\xc0\\xc1 export/IM\\xff.dcm", "dicom/notes\\xe9.txt"}
    assert rows["dicom/caf\\xe9.dcm"]["outcome"] == "deidentified"
    assert rows["dicom/\\xc0\\xc1 export/IM\\xff.dcm"]["outcome"] == "deidentified"
    assert rows["dicom/notes\\xe9.txt"]["outcome"] == "quarantined"
    assert rows["dicom/notes\\xe9.txt"]["reason"].startswith("not DICOM")
    # the quarantined original is kept under its own name, byte for byte
    kept = os.fsencode(vault / "quarantine" / NIGHT / "dicom") + b"/notes\xe9.txt"
    with open(kept, "rb") as handle:
        assert handle.read() == b"not dicom at all"
    outputs = sorted(p.relative_to(out).as_posix() for p in (out / "dicom").rglob("*.dcm"))
    assert len(outputs) == 2 and all(name.isascii() for name in outputs)
