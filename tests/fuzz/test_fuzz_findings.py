"""What the fuzz tier found in stages the ingest team does not own: each minimal input as a test.

An open finding is marked ``xfail(strict=True)`` with the bug and its owner: the test fails today for
the reason given, and the day the owner's fix lands it passes, which strict xfail turns into a failure,
so the mark is removed and the test stays as the regression test (as for the first one below). Found
with ``HYPOTHESIS_PROFILE=long``; hypothesis shrank each to the input below.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pydicom
from csv_mutations import TOKEN, Edit, TableSample
from dicom_mutations import BASES, Mutation, Sample
from test_fuzz_deid import _deid, _leaks
from test_fuzz_tables import _pseudonymise


def _element(base: str, tag: bytes) -> int:
    """Where the top-level element with the little-endian ``tag`` starts in a base file."""
    found = [e.start for e in BASES[base].elements if BASES[base].data[e.start : e.start + 4] == tag]
    assert len(found) == 1
    return found[0]


def test_an_element_of_an_unknown_group_leaves_no_identifier_in_explicit_vr() -> None:
    """Found while the raw-bytes fast path kept (000A,0050), an unknown even group, value included (the
    pydicom path removed it); fixed by the de-identification merge (one decision function for both
    paths): kept as the regression test."""
    at = _element("explicit", b"\x08\x00\x50\x00")  # (0008,0050) AccessionNumber
    sample = Sample("explicit", (Mutation("flip", at, 1),))  # group 0x0008 -> 0x000A
    with tempfile.TemporaryDirectory() as tmp:
        out, rows = _deid([sample], Path(tmp))
        assert [r.outcome for r in rows] == ["deidentified"]
        assert _leaks([sample], out) == {}


def test_the_same_element_in_implicit_vr_is_removed() -> None:
    """The pydicom path: it removed the element before the fix as well."""
    at = _element("implicit", b"\x08\x00\x50\x00")
    sample = Sample("implicit", (Mutation("flip", at, 1),))
    with tempfile.TemporaryDirectory() as tmp:
        out, rows = _deid([sample], Path(tmp))
        assert [r.outcome for r in rows] == ["deidentified"]
        assert _leaks([sample], out) == {}


def test_an_element_with_an_unknown_vr_is_not_copied_to_the_output() -> None:
    """Found while one flipped bit turning ImageComments' VR LT into 'MT' let the element through with
    its value (and the output could not be read back); fixed in decide(): an element whose VR is not a
    DICOM VR is removed whatever the table says. The regression test."""
    at = _element("explicit", b"\x20\x00\x00\x40")  # (0020,4000) ImageComments, VR LT
    sample = Sample("explicit", (Mutation("flip", at + 4, 0),))  # "LT" -> "MT"
    with tempfile.TemporaryDirectory() as tmp:
        out, rows = _deid([sample], Path(tmp))
        if rows[0].outcome == "deidentified":
            pydicom.dcmread(out / rows[0].output_path)
        assert _leaks([sample], out) == {}


def test_a_row_with_an_extra_field_leaves_no_identifier() -> None:
    """Found while a row with one field more than the header (an unquoted comma, 'DOE, JANE') came out
    shifted one column right, the phone number in height_cm; fixed by the tables' declared handling
    (a kept value leaves only when it is one of its column's codes or a measurement): the regression
    test."""
    sample = TableSample("site", "clinical", (Edit("extra_field", row=1, col=0),), "utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        counts, out, _ = _pseudonymise(sample, Path(tmp))
        if counts is not None:
            assert TOKEN.findall((out / "clinical.csv").read_bytes()) == []
