"""`cohortpool validate` renders GX's pages in a fresh process (issue 16 item 2): same batch, same exit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner
from validate_support import copy_clean, set_cell

from cohortpool.cli import app
from cohortpool.validate import Validator


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _json(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _defective(tmp_path: Path) -> Path:
    sub = copy_clean(tmp_path / "submission")
    set_cell(sub, "reads", 3, "level", "L7")
    set_cell(sub, "clinical", 2, "bmi", "231.70")
    return sub


def test_the_command_as_a_program_writes_the_batch_a_call_in_process_writes(tmp_path: Path) -> None:
    sub = _defective(tmp_path)
    program = subprocess.run(
        [sys.executable, "-m", "cohortpool", "validate", str(sub), "--out", str(tmp_path / "program")],
        capture_output=True,
        text=True,
        check=False,
        # Python's import log, inherited through exec: each program image imports the CLI once
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    images = re.findall(r"^import time:.*\|\s+cohortpool\.cli\._app$", program.stderr, re.MULTILINE)
    assert len(images) == 2  # the command replaced itself with the program that finished the batch
    in_process = CliRunner().invoke(app, ["validate", str(sub), "--out", str(tmp_path / "in_process")])
    assert program.returncode == in_process.exit_code == 1, program.stderr
    expected = in_process.stdout.replace(str(tmp_path / "in_process"), str(tmp_path / "program"))
    assert program.stdout == expected
    assert _files(tmp_path / "program") == _files(tmp_path / "in_process")
    assert (tmp_path / "program" / "data_docs" / "gx" / "reads.typed.html").is_file()
    # nothing of the hand-over is left beside the batch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in_process", "program", "submission"]


def test_a_folder_named_cohortpool_where_it_runs_is_not_what_finishes_the_batch(tmp_path: Path) -> None:
    sub = _defective(tmp_path)
    decoy = tmp_path / "cohortpool"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("", encoding="utf-8")
    (decoy / "__main__.py").write_text("raise SystemExit('the decoy ran')\n", encoding="utf-8")
    program = subprocess.run(  # -P: the command itself starts from the installed package
        [sys.executable, "-P", "-m", "cohortpool", "validate", str(sub), "--out", str(tmp_path / "program")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert program.returncode == 1, program.stderr
    assert "decoy" not in program.stderr
    Validator().validate_submission(sub, tmp_path / "direct")
    assert _files(tmp_path / "program") == _files(tmp_path / "direct")


_FINISHER = textwrap.dedent(
    """
    import json, os, sys
    seen = {"pid": os.getpid(), "gx_imported": "great_expectations" in sys.modules}
    from cohortpool.validate.handover import take_over
    staged = take_over(int(sys.argv[2]))
    staged.finish()
    seen["imported"] = sorted(m for m in ("duckdb", "cohortpool.validate.batch") if m in sys.modules)
    with open(sys.argv[1], "w") as handle:
        json.dump(seen, handle)
    """
)

_STAGER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from cohortpool.validate import Validator
    from cohortpool.validate.handover import hand_over
    submission, out, seen, finisher, unpicklable = sys.argv[1:]
    staged = Validator().stage_submission(Path(submission), Path(out))
    with open(seen + ".before", "w") as handle:
        json.dump({"pid": os.getpid()}, handle)
    if unpicklable == "yes":
        staged.summary["unpicklable"] = lambda: None
    left = sorted(p.name for p in staged.staging.rglob("*"))
    hand_over(staged, [sys.executable, "-c", finisher, seen])
    if unpicklable != "yes":
        sys.exit("hand_over returned: the process was not replaced")
    assert sorted(p.name for p in staged.staging.rglob("*")) == left, "hand_over left a file"
    del staged.summary["unpicklable"]
    staged.finish()
    sys.exit(5)
    """
)


def _stage_and_hand_over(tmp_path: Path, out: str, unpicklable: bool) -> tuple[int, Path]:
    seen = tmp_path / f"{out}.json"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _STAGER,
            str(tmp_path / "submission"),
            str(tmp_path / out),
            str(seen),
            _FINISHER,
            "yes" if unpicklable else "no",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 5), done.stderr
    return done.returncode, seen


def test_the_batch_is_finished_by_the_program_that_replaces_the_process(tmp_path: Path) -> None:
    sub = _defective(tmp_path)
    code, seen = _stage_and_hand_over(tmp_path, "handed", unpicklable=False)
    assert code == 0
    before, after = _json(Path(f"{seen}.before")), _json(seen)
    assert after["pid"] == before["pid"]  # the same process, replaced (exec), not a child
    assert after["gx_imported"] is False  # the new program starts without the old one's modules
    assert after["imported"] == []  # nor the row checks, nor DuckDB: the pages do not need them
    Validator().validate_submission(sub, tmp_path / "direct")
    assert _files(tmp_path / "handed") == _files(tmp_path / "direct")


def test_a_batch_that_cannot_be_handed_over_is_finished_by_its_own_process(tmp_path: Path) -> None:
    sub = _defective(tmp_path)
    code, seen = _stage_and_hand_over(tmp_path, "kept", unpicklable=True)
    assert code == 5 and not seen.exists()  # hand_over returned; the finisher never ran
    Validator().validate_submission(sub, tmp_path / "direct")
    assert _files(tmp_path / "kept") == _files(tmp_path / "direct")


def test_the_finishing_command_started_by_hand_says_what_it_is_for(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a staged batch")
    with junk.open("rb") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "cohortpool", "_finish-validate", "0"],
            stdin=handle,
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.startswith("error: descriptor 0 holds no staged batch")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
