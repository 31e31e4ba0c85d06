"""The nightly run (`cohortpool run`, a real subprocess with its own Prefect) over the token-planted corpus.

``tests/data/deid_corpus.py`` plants a unique token in every identifying place of a DICOM drop (every
attribute of PS3.15 Table E.1-1, original UIDs, institution/station/physician names, private blocks,
nested sequences, file meta, overlays, trailing elements, GB18030 / UTF-8 / ISO 2022 names, folder and
file names) and in its tables. One run over a landing folder holding that drop (``site07``)
and a synthetic site (``site01``) is then checked: every byte and path the hub and Prefect see (OUT but
the site-private vault and state: Prefect's database with its logs, artifacts and run names, the result
cache, the scratch folder, submissions, validated batches, warehouse, report) and the terminal hold none
of the tokens, in any encoding; the same scanner finds them in the input and in the vault's crosswalk
(negative controls).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from support import drop_identifiers, finish_run, start_run

from cohortpool.synth import write_consortium

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import NIGHT, SITE, Corpus, build_corpus, find_leaks

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("hardening-nightly-phi"),
    pytest.mark.filterwarnings("ignore:VR lookup failed:UserWarning"),  # the scanner reading bad input
]
#: stay at the site (the vault holds the crosswalk back to the patients; state holds no data)
PRIVATE = ("vault", "state")
#: a planted ASCII token or original UID of the corpus (deid_corpus.Planter, UidSource)
_PLANTED = re.compile(r"QZ[0-9]{5}K|1\.2\.826\.0\.1\.3680043\.9\.7777\.[0-9.]*[0-9]")
SITES = json.dumps([{"site_id": "site01"}, {"site_id": SITE}])


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, list[str], Path, int, str]:
    root = tmp_path_factory.mktemp("nightly-phi")
    landing = root / "landing"
    corpus = build_corpus(landing)
    write_consortium(landing, sites=1, max_patients=3)
    (landing / "_truth.json").unlink()
    literal = [*corpus.literal_tokens, *drop_identifiers(landing, "site01")]
    out = root / "out"
    code, text = finish_run(start_run(landing, out, sites=SITES), timeout=600)
    return corpus, literal, out, code, text


def _prefect_text(database: Path) -> str:
    """What Prefect recorded, decoded: log lines, artifacts, flow/task run names, parameters, states."""
    parts: list[str] = []
    with sqlite3.connect(database) as con:
        for query in (
            "select message from log",
            "select coalesce(key, '') || ' ' || coalesce(description, '') || ' ' || coalesce(data, '') "
            "from artifact",
            "select name || ' ' || coalesce(parameters, '') from flow_run",
            "select name from task_run",
            "select coalesce(message, '') || ' ' || coalesce(data, '') from flow_run_state",
            "select coalesce(message, '') || ' ' || coalesce(data, '') from task_run_state",
        ):
            parts.extend(str(row[0]) for row in con.execute(query))
    return "\n".join(parts)


def test_no_planted_token_reaches_the_hub_prefect_or_the_terminal(planted_run, tmp_path: Path) -> None:
    _corpus, literal, out, code, text = planted_run
    assert code == 1, text  # the planted bad files are quarantined; both sites complete
    assert "failed at" not in text, text
    # every byte and path of OUT but the site-private folders, as the run left them (raw and inflated
    # bytes, decoded DICOM text; Prefect's database with its write-ahead log)...
    seen = tmp_path / "seen"
    shutil.copytree(out, seen, symlinks=True, ignore=lambda d, _n: PRIVATE if Path(d) == out else ())
    assert (seen / "submissions" / SITE / NIGHT / "dicom").is_dir()
    assert (seen / "validated" / SITE / NIGHT / "summary.json").is_file()
    assert (seen / "warehouse.duckdb").is_file() and (seen / "report" / "report.html").is_file()
    # ...then what Prefect recorded, decoded (it really recorded the planted site's runs)...
    databases = list((out / ".prefect").rglob("prefect.db"))  # the copy above stays as it was
    assert len(databases) == 1, databases
    prefect = _prefect_text(databases[0])
    for name in (
        f"build-submission-{SITE}-{NIGHT}",
        f"validate-submission-{SITE}-{NIGHT}",
        "quarantine-by-site",
    ):
        assert name in prefect, name
    assert prefect.count(f"{SITE} {NIGHT}") >= 3, prefect[-2000:]  # the steps' log lines
    # ...then the terminal
    assert find_leaks(seen, literal, extra_text=f"{prefect}\n{text}") == []


def test_the_scanner_sees_the_tokens_where_they_belong(planted_run) -> None:
    corpus, literal, out, _code, _text = planted_run
    # every planted token and original UID that is in the drop's bytes or paths is found there, and so
    # are those inside the deflated data set (not in the raw bytes)
    blob = b"\n".join(
        [p.read_bytes() for p in corpus.drop.rglob("*") if p.is_file()]
        + [p.as_posix().encode() for p in corpus.drop.rglob("*")]
    )
    # (sets, not a substring search per token: the corpus plants over 10^5 tokens)
    in_blob = {m.decode() for m in re.findall(_PLANTED.pattern.encode(), blob)}
    present = [t for t in corpus.all_tokens if t in in_blob or (t in literal and t.encode() in blob)]
    found = "\n".join(find_leaks(corpus.drop, literal))
    found_tokens = set(_PLANTED.findall(found))

    def seen(token: str) -> bool:
        return token in found_tokens or (token in literal and token in found)

    assert len(present) > 1000 and [t for t in present if not seen(t)] == []
    assert sum(seen(t) for t in corpus.all_tokens) > len(present)
    # and in the site's private crosswalk (original MRNs and accession numbers beside their pseudonyms)
    crosswalk = [h for h in find_leaks(out / "vault" / SITE, literal) if h.startswith("file crosswalk.csv")]
    planted = [m.removeprefix("M") for m in corpus.mrns] + [a.removeprefix("AC") for a in corpus.accessions]
    assert all(any(t in hit for hit in crosswalk) for t in planted), crosswalk
    # and in Prefect's records and the terminal, had the run printed a token there
    shown = find_leaks(out / "report", literal, extra_text=f"x {corpus.mrns[0]} 钟离秀英 y")
    assert shown == [f"log: {corpus.mrns[0].removeprefix('M')}", "log: 钟离秀英"]
