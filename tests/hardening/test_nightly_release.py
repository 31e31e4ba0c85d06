"""The nightly run (`cohortpool run`, a real subprocess) with a minimum k-anonymity that one site misses.

``min_k_anonymity`` 2, and a maximum date shift of one day (every patient is shifted by exactly -1, so
patients alike in age, sex and first exam stay alike): ``site01`` (three synthetic patients, each unique on
age, sex, site and first exam: k = 1) is withheld at the site and fails at de-identification with the
reason; ``site07`` (the planted corpus: two patients alike in all four, k = 2) is released, validated,
loaded and reported. The withheld night stays pending for the next run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support import finish_run, start_run

from cohortpool.synth import write_consortium

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import NIGHT, SITE, build_corpus

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hardening-nightly-release")]
SITES = json.dumps([{"site_id": "site01"}, {"site_id": SITE}])


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, int, str]:
    root = tmp_path_factory.mktemp("nightly-release")
    landing, out = root / "landing", root / "out"
    build_corpus(landing)
    write_consortium(landing, sites=1, max_patients=3)
    (landing / "_truth.json").unlink()
    night = next((landing / "site01").iterdir()).name
    settings = {"min_k_anonymity": "2", "deid__max_date_shift_days": "1"}
    code, raw = finish_run(start_run(landing, out, sites=SITES, **settings))
    return landing, out, night, code, raw


def test_a_release_below_the_minimum_k_fails_only_its_site_with_the_reason(blocked_run) -> None:
    from cohortpool.ingest import scan_sites
    from cohortpool.warehouse import connect

    landing, out, night, code, raw = blocked_run
    text = " ".join(raw.split())  # the terminal wraps long lines
    assert code == 3, raw  # a site failed, the other went on
    withheld = out / "submissions" / "site01" / night
    assert (withheld / "release_blocked.json").is_file() and not (withheld / "submission.json").exists()
    reason = (
        f"site01 {night}: failed at de-identify: ReleaseBlockedError: site01 {night}: k-anonymity 1 is below "
        "the minimum 2"
    )
    assert reason in text, raw
    assert f"site01 {night} failed" in text, raw  # its row in the summary table
    # an expected failure: said in one line, without a Python traceback, in the terminal and Prefect's log
    assert "Traceback" not in raw and "Unexpected result for failed state" not in raw, raw
    assert "NoneType: None" not in raw, raw
    assert not (out / "validated" / "site01").exists()
    # the other site went on: released, validated, loaded
    released = out / "submissions" / SITE / NIGHT / "submission.json"
    privacy = json.loads(released.read_text(encoding="utf-8"))["privacy"]
    assert privacy["k_anonymity"] == 2 and privacy["release_blocked"] is False, privacy
    assert (out / "validated" / SITE / NIGHT / "summary.json").is_file()
    assert f"{SITE} {NIGHT} quarantined" in text, raw  # its planted bad files; not failed
    con = connect(out / "warehouse.duckdb", read_only=True)
    try:
        batches = con.execute("select distinct site_id from raw.batches").fetchall()
        patients = con.execute("select count(*) from raw.clinical").fetchone()
    finally:
        con.close()
    assert batches == [(SITE,)] and patients == (2,)
    # the withheld night stays pending (the next run takes it, e.g. once the site generalised it)
    pending = scan_sites(landing, out / "state", configured=("site01", SITE)).pending
    assert [(n.site_id, n.night) for n in pending] == [("site01", night)]


def test_the_report_is_written_from_the_released_site_alone(blocked_run) -> None:
    _landing, out, _night, _code, raw = blocked_run
    assert "consortium step failed" not in raw
    assert (out / "report" / "report.html").is_file()
