"""The runs validate only verified submissions (issue 15.3).

- nightly: a submission left from an earlier run (made, not yet loaded: its night still pending) whose
  ``clinical.csv`` was cut on disk since is refused between the site half and the hub half: moved to
  ``OUT/rejected/<site>/<night>/`` with ``reason.json``, never validated, while the other site goes on;
- hub: a submission copied into ``OUT/submissions`` by hand with a file cut (the issue's measured case)
  is refused, never validated or loaded; an intact one arriving in the inbox is received and loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]


def _summary(state: Any) -> NightSummary:
    summary = summary_of(state.result(raise_on_failure=False))
    assert summary is not None, state
    return summary


def _cut(path: Path, size: int = 90) -> None:
    data = path.read_bytes()
    assert len(data) > size
    path.write_bytes(data[:size])


def _loaded_sites(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT DISTINCT site_id FROM analysis.batches").fetchall()}


@pytest.fixture(scope="module")
def first_run(
    run_nightly: Any, tiny_landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunLayout, dict[str, Path]]:
    """The tiny consortium through one nightly run; its submissions, copied away for the hub test."""
    layout = RunLayout(tmp_path_factory.mktemp("verify") / "out")
    summary = _summary(run_nightly(tiny_landing, layout.out))
    assert [o.failed_step for o in summary.outcomes] == [None, None], summary.outcomes
    copies = tmp_path_factory.mktemp("copies")
    made = {}
    for site in ("site01", "site02"):
        [night] = [p for p in (layout.submissions / site).iterdir() if not p.name.startswith(".")]
        made[site] = shutil.copytree(night, copies / site / night.name)
    return layout, made


def test_nightly_refuses_a_damaged_submission_and_the_other_site_goes_on(
    run_nightly: Any, tiny_landing: Path, first_run: tuple[RunLayout, dict[str, Path]]
) -> None:
    layout, _ = first_run
    [damaged] = [p for p in (layout.submissions / "site02").iterdir() if not p.name.startswith(".")]
    night = damaged.name
    _cut(damaged / "clinical.csv")
    # the nights are pending again (as after a run killed between packaging and loading): the cached
    # packaging step hands back the existing submission folders, the cut one included
    shutil.rmtree(layout.state)

    summary = _summary(run_nightly(tiny_landing, layout.out))

    by_site = {o.site_id: o for o in summary.outcomes}
    assert by_site["site02"].failed_step == "verify"
    assert by_site["site02"].error == "SubmissionRefusedError"
    assert "clinical.csv" in (by_site["site02"].detail or "")
    assert by_site["site02"].validation is None  # never validated
    assert by_site["site01"].failed_step is None and by_site["site01"].load is not None
    assert summary.exit_code == 3
    rejected = layout.out / "rejected" / "site02" / night
    reason = json.loads((rejected / "reason.json").read_text(encoding="utf-8"))
    assert reason["problems"][0]["file"] == "clinical.csv"
    assert reason["problems"][0]["check"] == "size"
    assert not damaged.exists()


def test_hub_validates_only_verified_submissions(
    prefect_harness: None, first_run: tuple[RunLayout, dict[str, Path]], tmp_path: Path
) -> None:
    from flows.hub import hub

    _, made = first_run
    out, inbox = tmp_path / "hub", tmp_path / "inbox"
    intact, cut = made["site01"], made["site02"]
    shutil.copytree(intact, inbox / "site01" / intact.name)  # pushed by the site: received first
    by_hand = shutil.copytree(cut, out / "submissions" / "site02" / cut.name)  # copied in by hand
    _cut(by_hand / "clinical.csv")

    summary = _summary(hub(out_dir=out, inbox_dir=inbox, return_state=True))

    by_site = {o.site_id: o for o in summary.outcomes}
    assert by_site["site02"].failed_step == "verify" and by_site["site02"].validation is None
    assert by_site["site01"].load is not None
    assert _loaded_sites(out / "warehouse.duckdb") == {"site01"}
    assert (out / "rejected" / "site02" / cut.name / "reason.json").is_file()
    assert not (out / "validated" / "site02").exists()
    assert list(inbox.glob("*/*")) == []  # the inbox was received


def _edit_counts_unsealed(folder: Path) -> None:
    """What someone without the key can do: change what submission.json says, files untouched."""
    manifest = folder / "submission.json"
    document = json.loads(manifest.read_text(encoding="utf-8"))
    document["counts"] = {**document.get("counts", {}), "files_in": 999}
    manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_a_hub_run_holding_the_secret_checks_seals_at_receive_and_at_verify(
    prefect_harness: None, first_run: tuple[RunLayout, dict[str, Path]], tmp_path: Path
) -> None:
    """The hub flow makes the checks `cohortpool receive` makes when the hub holds the key: an edited
    submission.json is refused whether it arrived in the inbox or was copied into OUT by hand."""
    from flows.hub import hub

    from cohortpool.pipeline.runconfig import load_run_config

    _, made = first_run
    out, inbox = tmp_path / "hub", tmp_path / "inbox"
    _edit_counts_unsealed(shutil.copytree(made["site01"], inbox / "site01" / made["site01"].name))
    _edit_counts_unsealed(
        shutil.copytree(made["site02"], out / "submissions" / "site02" / made["site02"].name)
    )
    config = load_run_config()
    assert config.key_fingerprint is not None  # the session's consortium secret is set

    summary = _summary(hub(out_dir=out, inbox_dir=inbox, config=config, return_state=True))

    steps = {o.site_id: o.failed_step for o in summary.outcomes}
    assert steps == {"site01": "receive", "site02": "verify"}, summary.outcomes
    for site, folder in made.items():
        reason = json.loads((out / "rejected" / site / folder.name / "reason.json").read_text("utf-8"))
        assert "seal" in reason["reason"], reason
    assert not (out / "warehouse.duckdb").exists() or _loaded_sites(out / "warehouse.duckdb") == set()


def test_a_hub_run_without_the_secret_admits_on_files_and_pins(
    prefect_harness: None,
    first_run: tuple[RunLayout, dict[str, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hub that chose not to hold the key cannot tell an edited submission.json from a sealed one; it
    still checks every file against it and the registry's pins (the edit above passes those)."""
    from flows.hub import hub

    from cohortpool.pipeline.runconfig import load_run_config

    _, made = first_run
    out, inbox = tmp_path / "hub", tmp_path / "inbox"
    _edit_counts_unsealed(shutil.copytree(made["site01"], inbox / "site01" / made["site01"].name))
    monkeypatch.delenv("COHORTPOOL_SECRET")
    config = load_run_config()
    assert config.key_fingerprint is None

    summary = _summary(hub(out_dir=out, inbox_dir=inbox, config=config, return_state=True))

    assert [(o.site_id, o.failed_step) for o in summary.outcomes] == [("site01", None)], summary.outcomes
    assert _loaded_sites(out / "warehouse.duckdb") == {"site01"}
