"""The SPSS files read by an independent implementation: R's `foreign::read.spss` (Debian r-cran-foreign).

pyreadstat both writes and (in the unit tests) reads our .sav files; here a reader that shares no code
with ReadStat must see the same values, variable labels and value labels.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from cohortpool.report.exports import write_sav
from report_results import analysis_sets

pytestmark = pytest.mark.integration

R_SCRIPT = r"""
suppressMessages(library(foreign))
args <- commandArgs(trailingOnly = TRUE)
d <- read.spss(args[1], to.data.frame = TRUE, use.value.labels = TRUE, trim.factor.names = TRUE)
labels <- attr(d, "variable.labels")
write.csv(d, args[2], row.names = FALSE, na = "")
write.csv(data.frame(column = names(labels), label = unname(labels)), args[3], row.names = FALSE)
"""


def _r_with_foreign() -> str:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript is not installed (Debian r-base-core; .ci/run installs it)")
    probe = subprocess.run([rscript, "-e", "library(foreign)"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("R package foreign is not installed (Debian r-cran-foreign; .ci/run installs it)")
    return rscript


def test_r_foreign_reads_values_and_labels_of_our_sav(tmp_path: Path) -> None:
    rscript = _r_with_foreign()
    patients = analysis_sets()["patients"]
    sav = write_sav(patients, tmp_path / "patients.sav", "patients")
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT)
    subprocess.run(
        [rscript, str(script), str(sav), str(tmp_path / "data.csv"), str(tmp_path / "labels.csv")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = pd.read_csv(tmp_path / "data.csv", dtype=str, keep_default_na=False)
    # value labels turned back into the categories we coded
    assert data["diagnosis"].tolist() == ["OP", "MET", "OP"]
    assert data["sex"].tolist() == ["F", "M", "F"]
    assert data["osteoporosis"].tolist() == ["yes", "no", "yes"]
    assert data["site_id"].tolist() == ["site01", "site01", "site02"]
    # identifiers stay text, numbers stay numbers, missing stays missing
    assert data["patient_id"].str.strip().tolist() == patients["patient_id"].tolist()
    assert [float(v) for v in data["age_years"]] == [70.0, 61.0, 66.0]
    assert data["bmi"].tolist()[1] == ""
    labels = dict(pd.read_csv(tmp_path / "labels.csv", keep_default_na=False).itertuples(index=False))
    assert labels["bmi"] == "BMI, kg/m2"
    assert labels["diagnosis"] == "Diagnosis (OP osteoporotic, MET metastatic)"
