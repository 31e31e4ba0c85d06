"""The SQL engine checks a submission's rows without Great Expectations in the process; GX is imported only
to render its Data Docs pages, after the tables are written (issue 16 item 2: GX's import is about 140 MB
of a validating process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from validate_support import copy_clean

#: runs in a fresh interpreter: this test session has imported GX long ago
_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import cohortpool.validate.batch as batch
    import cohortpool.validate.staged as staged

    seen = {}
    render = staged.write_data_docs

    def observed(*args, **kwargs):
        seen["gx_before_pages"] = "great_expectations" in sys.modules
        return render(*args, **kwargs)

    staged.write_data_docs = observed
    validator = batch.Validator(engine=sys.argv[3], chunk_bytes=int(sys.argv[4]))
    outcome = validator.validate_submission(Path(sys.argv[1]), Path(sys.argv[2]))
    seen["gx_after_pages"] = "great_expectations" in sys.modules
    seen["pages"] = sorted(p.name for p in (outcome.out_dir / "data_docs" / "gx").iterdir())
    print(json.dumps(seen))
    """
)


def _probe(tmp_path: Path, engine: str, chunk_bytes: int) -> dict[str, object]:
    sub = copy_clean(tmp_path / "submission")
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(sub), str(tmp_path / "batch"), engine, str(chunk_bytes)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return seen


@pytest.mark.parametrize("chunk_bytes", [1024, 64 * 1024 * 1024], ids=["read-in-chunks", "read-whole"])
def test_sql_engine_checks_rows_without_gx_and_imports_it_only_for_the_pages(
    tmp_path: Path, chunk_bytes: int
) -> None:
    seen = _probe(tmp_path, "duckdb", chunk_bytes)
    assert seen["gx_before_pages"] is False
    assert seen["gx_after_pages"] is True  # the pages are GX's own, rendered by GX
    assert seen["pages"] == [
        f"{table}.{half}.html"
        for table in ("clinical", "imaging_manifest", "reads")
        for half in ("text", "typed")
    ]


def test_gx_engine_still_runs_the_checks_with_gx(tmp_path: Path) -> None:
    seen = _probe(tmp_path, "gx", 64 * 1024 * 1024)
    assert seen["gx_before_pages"] is True
