"""The retention list (``deid/data/retention_list.csv``) names only attributes that carry no identity.

It is the allow-list for what Table E.1-1 does not name: a row there keeps a text value in every
de-identified file. Each row is checked against pydicom's data dictionary (PS3.6) and against what
a reviewer would refuse on sight: person names, identifiers, addresses, free-text comments and
descriptions, institutions, staff.
"""

from __future__ import annotations

import csv
import io
import re
from importlib import resources

import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag

from cohortpool.deid.profile import RETENTION_FILE, load_profile, read_retention

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
#: what an attribute that identifies is called (PS3.6 keywords)
_IDENTIFYING = re.compile(
    r"Name|(?-i:IDs?)$|Identifier|Address|Comment|Description|Institution|Operator|Physician|Patient|"
    r"Person|Telephone|Birth|Accession|Station|Serial|Label|Text|Note|Author|Performer|Referr|Request|"
    r"Department|Location|Country|Region|Occupation|Ethnic|Religio|Issuer|Contact|Mail|Signature",
    re.IGNORECASE,
)
#: keywords the pattern catches whose value still says nothing about a person, each reviewed
_REVIEWED_DESPITE_NAME = {
    "ManufacturerModelName": "a product's model name (imaging manifest: model)",
    "SequenceName": "the scanner's pulse-sequence name, vendor-generated (manifest: sequence family)",
    "PulseSequenceName": "the scanner's pulse-sequence name, vendor-generated",
    "PatientPosition": "HFS/FFS...: how the patient lay, a code string",
    "PatientOrientation": "A/P/L/R/H/F: directions of rows and columns, a code string",
    "ContextIdentifier": "the number of a DICOM context group (e.g. 4031), a code string",
    "ContentLabel": "a code string labelling a segmentation's content (SEGMENTATION, ROI), form-checked",
    "StackID": "the equipment's label of a stack of frames (1, 2...), needed with In-Stack Position Number",
}
#: VRs a kept value may have: code strings and short strings of device and coding vocabularies
_KEPT_VRS = {"CS", "SH", "LO", "UC", "UR"}


def _rows() -> list[dict[str, str]]:
    data = resources.files("cohortpool.deid").joinpath("data", RETENTION_FILE).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in data.splitlines() if not line.startswith("#")))


def test_every_row_has_a_valid_tag_keyword_and_vr_per_pydicoms_dictionary() -> None:
    rows = _rows()
    assert len(rows) > 100
    for row in rows:
        match = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", row["tag"])
        assert match is not None, row
        tag = int(match[1] + match[2], 16)
        assert keyword_for_tag(tag) == row["keyword"], row
        assert dictionary_VR(tag) == row["vr"], row
        assert not (tag >> 16) & 1, row  # never a private attribute


def test_every_row_says_why_it_carries_no_identity_and_what_needs_it() -> None:
    for row in _rows():
        assert row["action"] in ("K", "Z", "D"), row
        assert len(row["reason"].strip()) >= 20, row
        assert re.search(r"Type [123]C?\b|manifest|study", row["needed_by"]), row


def test_no_person_name_and_no_identifying_keyword_is_kept() -> None:
    for row in _rows():
        assert row["vr"] != "PN", row
        if row["action"] != "K":
            continue  # emptied or dummied: nothing of the value is kept
        assert row["vr"] in _KEPT_VRS, row
        if _IDENTIFYING.search(row["keyword"]):
            assert row["keyword"] in _REVIEWED_DESPITE_NAME, f"{row['keyword']} looks identifying"


def test_the_pattern_would_catch_what_table_e11_removes() -> None:
    # the negative control: the keyword pattern recognises the identifying attributes the table lists
    for keyword in ("PatientName", "OtherPatientIDs", "InstitutionName", "OperatorsName", "StudyDescription",
                    "ImageComments", "ReferringPhysicianName", "StationName", "DeviceSerialNumber",
                    "PatientAddress", "AccessionNumber", "RequestingService"):  # fmt: skip
        assert _IDENTIFYING.search(keyword), keyword


def test_no_row_names_an_attribute_the_table_decides() -> None:
    profile = load_profile(DEFAULT)
    assert profile.retained and not set(profile.retained) & set(profile.exact)
    with pytest.raises(ValueError, match="whose action applies"):
        read_retention(
            io.StringIO('keyword,tag,vr,action,reason,needed_by\nPatientSex,"(0010,0040)",CS,K,x,y\n'),
            profile.exact,
        )


def test_a_row_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason"):
        read_retention(
            io.StringIO('keyword,tag,vr,action,reason,needed_by\nModality,"(0008,0060)",CS,K,,y\n'), {}
        )


def test_what_the_manifest_reads_survives_in_the_header() -> None:
    # the manifest's fields that Table E.1-1 does not name are on the list with a keep
    kept = {r.keyword for r in load_profile(DEFAULT).retained.values() if r.action == "K"}
    assert {"Modality", "Manufacturer", "ManufacturerModelName", "SequenceName", "ScanOptions"} <= kept
