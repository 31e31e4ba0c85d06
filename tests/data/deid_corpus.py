"""A tiny site drop with unique tokens planted in every identifying place (built, never committed).

Provenance: every byte is synthetic, made here with pydicom from the profile table the project
ships (read as CSV and resolved here, not through the code under test); no real study is
involved. ``build_corpus(root)`` writes ``root/<site>/<night>/`` with ``dicom/`` (valid variants
and bad inputs, see :data:`EXPECTED`), ``clinical.csv`` and ``reads.csv``, and returns a
:class:`Corpus` naming every planted token and the expected outcome of every input file.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pickle
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.datadict import DicomDictionary, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

SITE = "site07"
NIGHT = "2024-03-02"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
DATE_TOKEN = "19310405"
DATETIME_TOKEN = "19310405123456"
ISO_DATE_TOKEN = "1931-04-05"
GB18030_NAME = "钟离秀英"
UTF8_NAME = "Þórsdóttir^Ǽsa"
JIS_NAME = "山田^太郎"
#: planted in attributes no table names, each in the character set of its file (GB18030, UTF-8, ISO 2022
#: IR 87, and ISO_IR 100 in every other image)
UNLISTED_GB18030 = "隐私备注"
UNLISTED_UTF8 = "Ünlístëdá"
UNLISTED_JIS = "秘匿項目"
UNLISTED_LATIN1 = "Zöllnerstraße"
UNICODE_TOKENS = (
    "钟离秀英", "Þórsdóttir", "Ǽsa", "山田", "太郎",
    UNLISTED_GB18030, UNLISTED_UTF8, UNLISTED_JIS, UNLISTED_LATIN1,
)  # fmt: skip
DX = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
#: the retention list the plan is read from (as CSV, never through the code under test)
RETENTION_LIST = "retention_list.csv"
#: attributes of the supported IODs' modules that neither Table E.1-1 nor the retention list names,
#: one of every VR that can carry text (checked against both files when the corpus is built); PS3.6
#: has no AE or AS attribute outside the table, so those two are planted under tags no dictionary
#: knows, in standard groups (below)
UNLISTED_MODULE_ATTRIBUTES = {
    "CS": (0x00181600, "ShutterShape"),  # Display Shutter (DX, CR)
    "LO": (0x00281055, "WindowCenterWidthExplanation"),  # VOI LUT (CT, MR, DX, CR)
    "LT": (0x00187006, "DetectorDescription"),  # DX Detector
    "PN": (0x00140104, "SecondaryReviewerName"),  # not named by the table (a DICOS/NDE attribute)
    "SH": (0x00181260, "PlateType"),  # CR Image
    "ST": (0x00281351, "PartialViewDescription"),  # DX/MG Anatomy Imaged
    "UC": (0x00189908, "PotentialReasonsForProcedure"),  # Protocol context
    "UR": (0x00081190, "RetrieveURL"),  # SOP Common / Series retrieval
    "UT": (0x00189941, "ImageFilterDescription"),  # CT/MR image filtering
}
#: even-group tags no dictionary knows, beside standard and private groups ("private-adjacent"): an
#: element of every text VR, explicit VR (implicit files carry them as UN)
UNKNOWN_STANDARD_TAGS = (0x00101F00, 0x00181F00, 0x00201F00)
TEXT_VRS = ("AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT")
DEFAULT_OPTIONS = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
#: the shipped Table E.1-1 the plan is read from (as CSV, never through the code under test)
REFERENCE_TABLE = "ps315_annex_e_2026c.csv"


class Planter:
    """Hands out unique ASCII tokens (valid in every string VR, 8 characters)."""

    def __init__(self) -> None:
        self.n = 0
        self.tokens: list[str] = []

    def __call__(self) -> str:
        self.n += 1
        token = f"QZ{self.n:05d}K"
        self.tokens.append(token)
        return token


@dataclass
class Corpus:
    """What was planted and what must happen to each input file."""

    drop: Path
    tokens: list[str]
    uids: list[str]
    expected: dict[str, str] = field(default_factory=dict)
    #: input path -> raw pixel data element value (for the byte-identity check)
    pixels: dict[str, bytes] = field(default_factory=dict)
    mrns: list[str] = field(default_factory=list)
    accessions: list[str] = field(default_factory=list)
    #: input path -> keywords of kept-text attributes planted with the file's own identifiers
    echoed: dict[str, set[str]] = field(default_factory=dict)

    @property
    def all_tokens(self) -> list[str]:
        return [*self.tokens, *self.uids, *self.literal_tokens]

    @property
    def literal_tokens(self) -> list[str]:
        """Tokens the pattern scan does not cover: planted dates and non-ASCII names."""
        return [DATE_TOKEN, DATETIME_TOKEN, ISO_DATE_TOKEN, *UNICODE_TOKENS]


class UidSource:
    def __init__(self) -> None:
        self.n = 0
        self.made: list[str] = []

    def __call__(self) -> str:
        self.n += 1
        uid = f"1.2.826.0.1.3680043.9.7777.{self.n}.{self.n * 7919 % 10007}"
        self.made.append(uid)
        return uid


def _pixels(rows: int, cols: int, seed: int) -> bytes:
    # values < 4096: every other byte is <= 0x0F, so no ASCII token can appear in pixel data
    return ((np.arange(rows * cols, dtype=np.uint32) * 37 + seed) % 4096).astype("<u2").tobytes()


def reference_plan(options: tuple[str, ...] = DEFAULT_OPTIONS) -> dict[int, tuple[str, str]]:
    """Tag -> (action, name) of every exact-tag row of the shipped Table E.1-1 under ``options``.

    Read here as plain CSV and resolved here, independently of :mod:`cohortpool.deid.profile`, so
    that a row the code under test wrongly keeps (a ``K`` in its loading, a mis-resolved option
    column) is still planted and its token found by the leak scan. Resolution (PS3.15 E.3): a chosen
    option's non-empty cell replaces the Basic Profile action; among several, ``K`` beats ``C``
    beats the rest. Masked rows (50xx, 60xx) and the private row are planted by hand in
    :func:`_image`.
    """
    table = resources.files("cohortpool.deid").joinpath("data", REFERENCE_TABLE)
    with table.open("r", encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(line for line in stream if not line.startswith("#")))
    plan: dict[int, tuple[str, str]] = {}
    for row in rows:
        tag = row["tag"]
        if "x" in tag or tag.startswith("(gggg,"):
            continue
        match = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", tag)
        assert match is not None, f"{REFERENCE_TABLE}: unreadable tag {tag!r}"
        cells = [row[o].strip() for o in options if row[o].strip()]
        basic = row["basic_profile"].strip()
        action = "K" if "K" in cells else "C" if "C" in cells else cells[0] if cells else basic
        plan[int(match[1] + match[2], 16)] = (action, row["name"])
    assert len(plan) == len(rows) - 4, "every row but (50xx,xxxx), (60xx,3000/4000), (gggg,eeee)"
    return plan


def _plant_profile(ds: Dataset, tok: Planter, uid: UidSource) -> None:
    """A token in every attribute Table E.1-1 names whose default action does not keep it."""
    for tag, (action, name) in sorted(reference_plan().items()):
        group = tag >> 16
        if group in (0x0000, 0x0002, 0x0004) or action == "K" or tag in _STRUCTURAL:
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = _guessed_vr(name)  # newer than pydicom's dictionary
        if " or " in vr:
            continue
        if vr == "PN":
            value: object = f"{tok()}^{tok()}"
        elif vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
            value = tok()
        elif vr == "UR":
            value = f"http://{tok()}.example/"
        elif vr == "DA":
            value = DATE_TOKEN
        elif vr == "DT":
            value = DATETIME_TOKEN
        elif vr == "UI":
            value = uid()
        elif vr == "SQ":
            value = Sequence([_nested_item(tok, uid, depth=0)])
        elif vr == "OB":
            value = tok().encode()
        else:
            continue  # TM, numbers: kept by the profile (times) or not identifying here
        ds.add(DataElement(tag, vr, value))


def _text_value(vr: str, tok: Planter) -> str:
    if vr == "PN":
        return f"{tok()}^{tok()}"
    if vr == "UR":
        return f"http://{tok()}.example/"
    return tok()  # also AS and AE: a token is no valid age, which a careless writer still sends


def _plant_unlisted(ds: Dataset, tok: Planter, uid: UidSource) -> None:
    """An attribute no table names, of every text VR: module attributes of the supported IODs and
    unknown elements of standard groups (see :data:`UNLISTED_MODULE_ATTRIBUTES`)."""
    for vr, (tag, _) in UNLISTED_MODULE_ATTRIBUTES.items():
        ds.add_new(tag, vr, _text_value(vr, tok))
    for base in UNKNOWN_STANDARD_TAGS:
        for n, vr in enumerate(TEXT_VRS):
            ds.add_new(base + 2 * n, vr, _text_value(vr, tok))


def check_unlisted_plan() -> None:
    """The planted "unlisted" attributes really are named neither by the table nor the retention list."""
    named = set(reference_plan())
    listed = resources.files("cohortpool.deid").joinpath("data", RETENTION_LIST)
    with listed.open("r", encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(line for line in stream if not line.startswith("#")):
            named.add(int(row["tag"][1:5] + row["tag"][6:10], 16))
    for vr, (tag, keyword) in UNLISTED_MODULE_ATTRIBUTES.items():
        assert tag not in named, keyword
        assert dictionary_VR(tag) == vr and keyword_for_tag(tag) == keyword, keyword
    for base in UNKNOWN_STANDARD_TAGS:
        for n in range(len(TEXT_VRS)):
            assert base + 2 * n not in DicomDictionary, hex(base + 2 * n)


def _guessed_vr(name: str) -> str:
    """A VR for planting an attribute pydicom does not know yet, from its name (explicit VR: the
    fast path declines ``UN``, and a real file would carry the attribute's own VR)."""
    if name.endswith("Sequence"):
        return "SQ"
    if name.endswith("DateTime"):
        return "DT"
    return "UR" if name.endswith("URI") else "UT"


def _nested_item(tok: Planter, uid: UidSource, depth: int) -> Dataset:
    item = Dataset()
    item.PatientName = f"{tok()}^{tok()}"
    item.InstitutionName = tok()
    item.ReferringPhysicianName = tok()
    item.ImageComments = tok()
    item.ReferencedSOPInstanceUID = uid()
    item.add_new(0x00091010, "LO", tok())  # private element without its creator
    _plant_unlisted(item, tok, uid)  # nothing names them, at any depth
    if depth > 0:
        # an unlisted sequence: kept, but cleaned inside, however deep
        item.AnatomicRegionSequence = Sequence([_nested_item(tok, uid, depth - 1)])
    return item


# identifiers and structure the builder sets itself
_STRUCTURAL = {0x00080018, 0x0020000D, 0x0020000E, 0x00100010, 0x00100020, 0x00080050, 0x00200052}


def _image(
    sop_class: str,
    modality: str,
    patient: tuple[str, str],
    accession: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame_uid: str,
    tok: Planter,
    uid: UidSource,
    description: str,
    rows: int = 16,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = uid()
    ds.file_meta.ImplementationVersionName = tok()
    ds.file_meta.SourceApplicationEntityTitle = tok()
    ds.file_meta.SendingApplicationEntityTitle = tok()
    ds.file_meta.ReceivingApplicationEntityTitle = tok()
    ds.file_meta.PrivateInformationCreatorUID = uid()
    ds.file_meta.PrivateInformation = tok().encode()
    _plant_profile(ds, tok, uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PatientName = patient[1]
    ds.PatientID = patient[0]
    ds.AccessionNumber = accession
    ds.PatientSex = "F"
    ds.PatientAge = "071Y"
    ds.PatientWeight = "61"
    ds.Modality = modality
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "Scanner 3000"
    ds.SeriesDescription = f"{description} {tok()}"
    ds.StudyDate = "20240301"
    ds.SeriesDate = "20240301"
    ds.StudyTime = "101010"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness = "3"
    ds.PixelSpacing = ["0.7", "0.7"]
    if modality == "MR":
        ds.MagneticFieldStrength = "1.5"
        ds.RepetitionTime = "3000"
        ds.EchoTime = "90"
    # an unlisted free-text attribute and an unlisted nested sequence
    ds.add_new(0x00284000, "LT", tok())  # Image Presentation Comments (retired, not in Table E.1-1)
    # dates the table does not name: shifted like the named ones, never passed through
    ds.add_new(0x0008041F, "DT", DATETIME_TOKEN)  # Study Update DateTime
    ds.add_new(0x00143076, "DA", DATE_TOKEN)  # Date of Gain Calibration
    ds.AnatomicRegionSequence = Sequence([_nested_item(tok, uid, depth=2)])
    _plant_unlisted(ds, tok, uid)
    ds.add_new(0x00284002, "LT", UNLISTED_LATIN1)  # in the file's own character set (ISO_IR 100)
    # private block with a text, a binary and a sequence element
    block = ds.private_block(0x0009, f"QZ CREATOR {tok()}", create=True)
    block.add_new(0x10, "LO", tok())
    block.add_new(0x11, "OB", tok().encode())
    block.add_new(0x12, "SQ", Sequence([_nested_item(tok, uid, depth=1)]))
    ds.add_new(0x00191023, "DS", "1.5")  # a safe-private value without creator: removed anyway
    # overlay and curve groups
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000022, "LO", tok())
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", tok().encode())
    ds.add_new(0x60004000, "LT", tok())
    ds.add_new(0x60001500, "LO", tok())  # Overlay Label: no table row names it
    ds.add_new(0x60000045, "LO", tok())  # Overlay Subtype
    # a second overlay group without data: only attributes the table does not name
    ds.add_new(0x60020010, "US", 4)
    ds.add_new(0x60020011, "US", 4)
    ds.add_new(0x60020040, "CS", "G")
    ds.add_new(0x60020022, "LO", tok())
    ds.add_new(0x60021500, "LO", tok())
    ds.add_new(0x50002500, "LO", tok())
    ds.add_new(0x50020022, "LO", tok())  # a curve group the table names only by mask
    ds.add_new(0x50003000, "OW", tok().encode())
    # image pixel module
    ds.Rows = rows
    ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = _pixels(rows, rows, int(sop_uid.rsplit(".", 1)[1]))
    # trailing elements after the pixel data
    signature = Dataset()
    signature.add_new(0x04000020, "AT", [0x00100010])
    signature.add_new(0x04000120, "OB", tok().encode())
    ds.add_new(0xFFFAFFFA, "SQ", Sequence([signature]))
    ds.add_new(0xFFFCFFFC, "OB", tok().encode())
    return ds


def _plant_charset(ds: Dataset, token: str) -> None:
    """``token`` (in the data set's own character set) in unlisted text attributes, top and nested."""
    for vr in ("LO", "LT", "SH", "ST", "UC", "UT"):
        ds.add_new(UNLISTED_MODULE_ATTRIBUTES[vr][0], vr, token)
    ds.add_new(UNLISTED_MODULE_ATTRIBUTES["PN"][0], "PN", f"{token}^{token}")
    item = ds.AnatomicRegionSequence[0]
    item.add_new(UNLISTED_MODULE_ATTRIBUTES["LO"][0], "LO", token)
    item.add_new(UNLISTED_MODULE_ATTRIBUTES["UT"][0], "UT", token)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _as_projection(ds: Dataset, sop_class: str, modality: str) -> None:
    """The attributes a projection radiograph's modules require (DX Series/Image/Detector, CR Series)."""
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", "1", "1"
    ds.PatientOrientation = ["P", "F"]
    ds.BodyPartExamined, ds.ViewPosition = "LSPINE", "AP"
    del ds.SliceThickness
    ds.AnatomicRegionSequence[0].update(_code("T-11503", "SRT", "Lumbar spine"))


def _as_dx(ds: Dataset, uid: UidSource) -> None:
    _as_projection(ds, DX, "DX")
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = ["0.15", "0.15"]
    ds.DetectorType, ds.ImageLaterality = "SCINTILLATOR", "U"
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.LossyImageCompression, ds.PresentationLUTShape = "00", "IDENTITY"
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"


def _as_cr(ds: Dataset, uid: UidSource) -> None:
    _as_projection(ds, CR, "CR")


def _as_enhanced(ds: Dataset, sop_class: str, modality: str, uid: UidSource) -> Dataset:
    """A two-frame enhanced image: the top-level modules of Enhanced CT/MR and the shared and per-frame
    functional groups every such instance carries (PS3.3 A.38, A.36; C.7.6.16)."""
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", "1", "1"
    ds.ContentDate, ds.ContentTime = "20240301", "101010"
    ds.PatientPosition, ds.PositionReferenceIndicator = "HFS", ""
    ds.SoftwareVersions, ds.DeviceSerialNumber = "VA10", "SN4711"
    ds.PixelPresentation, ds.VolumetricProperties, ds.VolumeBasedCalculationTechnique = (
        "MONOCHROME",
        "VOLUME",
        "NONE",
    )
    ds.ContentQualification, ds.BurnedInAnnotation, ds.LossyImageCompression = "PRODUCT", "NO", "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionContextSequence = Sequence()
    for keyword in ("SliceThickness", "PixelSpacing", "RepetitionTime", "EchoTime"):
        if keyword in ds:
            delattr(ds, keyword)
    dimensions = uid()
    ds.DimensionOrganizationSequence = Sequence([_item(DimensionOrganizationUID=dimensions)])
    ds.DimensionIndexSequence = Sequence(
        [
            _item(
                DimensionOrganizationUID=dimensions,
                DimensionIndexPointer=0x00209057,
                FunctionalGroupPointer=0x00209111,
            )
        ]
    )
    ds.NumberOfFrames = 2
    ds.PixelData = bytes(ds.PixelData) * 2
    shared = _item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=["0.7", "0.7"], SliceThickness="3")]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=["1", "0", "0", "0", "1", "0"])]),
        FrameAnatomySequence=Sequence(
            [
                _item(
                    AnatomicRegionSequence=Sequence([_code("T-11503", "SRT", "Lumbar spine")]),
                    FrameLaterality="U",
                )
            ]
        ),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [
            _item(
                FrameContentSequence=Sequence(
                    [_item(DimensionIndexValues=[n], InStackPositionNumber=n, StackID="1")]
                ),
                PlanePositionSequence=Sequence([_item(ImagePositionPatient=["0", "0", str(3 * n)])]),
            )
            for n in (1, 2)
        ]
    )
    return shared


def _as_enhanced_ct(ds: Dataset, uid: UidSource) -> None:
    shared = _as_enhanced(ds, ENHANCED_CT, "CT", uid)
    frame_type = dict(
        FrameType=["ORIGINAL", "PRIMARY", "VOLUME", "NONE"],
        PixelPresentation="MONOCHROME",
        VolumetricProperties="VOLUME",
        VolumeBasedCalculationTechnique="NONE",
    )
    shared.CTImageFrameTypeSequence = Sequence([_item(**frame_type)])
    shared.CTAcquisitionTypeSequence = Sequence(
        [
            _item(
                AcquisitionType="SPIRAL",
                ConstantVolumeFlag="NO",
                FluoroscopyFlag="NO",
            )
        ]
    )
    shared.CTAcquisitionDetailsSequence = Sequence(
        [
            _item(
                DataCollectionDiameter="500",
                GantryDetectorTilt="0",
                TableHeight="150",
                SingleCollimationWidth=0.6,
                TotalCollimationWidth=38.4,
                RotationDirection="CW",
                RevolutionTime=0.5,
            )
        ]
    )
    shared.CTTableDynamicsSequence = Sequence(
        [_item(TableSpeed=50.0, TableFeedPerRotation=40.0, SpiralPitchFactor=1.0)]
    )
    shared.CTGeometrySequence = Sequence(
        [_item(DistanceSourceToDetector="1085", DistanceSourceToDataCollectionCenter=595.0)]
    )
    shared.CTReconstructionSequence = Sequence(
        [
            _item(
                ReconstructionDiameter="350",
                ReconstructionFieldOfView=[350.0, 350.0],
                ReconstructionAlgorithm="FILTER_BACK_PROJ",
                ConvolutionKernel="B30F",
                ConvolutionKernelGroup="SOFT_TISSUE",
                ReconstructionAngle=360.0,
                ImageFilter="NONE",
                ReconstructionPixelSpacing=[0.7, 0.7],
            )
        ]
    )
    shared.CTExposureSequence = Sequence(
        [
            _item(
                ExposureTimeInms=500.0,
                XRayTubeCurrentInmA=200.0,
                ExposureInmAs=100.0,
                ExposureModulationType="NONE",
            )
        ]
    )
    shared.CTXRayDetailsSequence = Sequence(
        [
            _item(
                KVP="120",
                FocalSpots=["1.2"],
                FilterType="BODY",
                FilterMaterial="ALUMINUM",
            )
        ]
    )
    shared.CTPositionSequence = Sequence(
        [
            _item(
                TablePosition=0.0,
                ReconstructionTargetCenterPatient=[0.0, 0.0, 0.0],
                DataCollectionCenterPatient=[0.0, 0.0, 0.0],
            )
        ]
    )
    shared.PixelValueTransformationSequence = Sequence(
        [
            _item(
                RescaleIntercept="-1024",
                RescaleSlope="1",
                RescaleType="HU",
            )
        ]
    )
    shared.IrradiationEventIdentificationSequence = Sequence([_item(IrradiationEventUID=uid())])


def _as_enhanced_mr(ds: Dataset, uid: UidSource) -> None:
    ds.ComplexImageComponent, ds.AcquisitionContrast = "MAGNITUDE", "T2"
    ds.ApplicableSafetyStandardAgency, ds.MagneticFieldStrength = "IEC", "1.5"
    shared = _as_enhanced(ds, ENHANCED_MR, "MR", uid)
    shared.MRImageFrameTypeSequence = Sequence(
        [
            _item(
                FrameType=["ORIGINAL", "PRIMARY", "VOLUME", "NONE"],
                PixelPresentation="MONOCHROME",
                VolumetricProperties="VOLUME",
                VolumeBasedCalculationTechnique="NONE",
                ComplexImageComponent="MAGNITUDE",
                AcquisitionContrast="T2",
            )
        ]
    )
    shared.MRTimingAndRelatedParametersSequence = Sequence(
        [
            _item(
                RepetitionTime="3000",
                FlipAngle="90",
                EchoTrainLength="15",
                RFEchoTrainLength=15,
                GradientEchoTrainLength=0,
                OperatingModeSequence=Sequence([_item(OperatingModeType="RF", OperatingMode="IEC_NORMAL")]),
                SpecificAbsorptionRateSequence=Sequence(
                    [
                        _item(
                            SpecificAbsorptionRateDefinition="IEC_WHOLE_BODY",
                            SpecificAbsorptionRateValue=0.5,
                        )
                    ]
                ),
            )
        ]
    )
    shared.MREchoSequence = Sequence([_item(EffectiveEchoTime=90.0)])
    shared.MRModifierSequence = Sequence(
        [
            _item(
                InversionRecovery="NO",
                FlowCompensation="NONE",
                T2Preparation="NO",
                SpectrallySelectedExcitation="NONE",
                SpatialPresaturation="NONE",
                ParallelAcquisition="NO",
                PartialFourier="NO",
            )
        ]
    )
    shared.MRImagingModifierSequence = Sequence(
        [
            _item(
                MagnetizationTransfer="NONE",
                BloodSignalNulling="NO",
                Tagging="NONE",
                PixelBandwidth="200",
                TransmitterFrequency=[63.8],
            )
        ]
    )
    shared.MRReceiveCoilSequence = Sequence(
        [
            _item(
                ReceiveCoilName="SPINE 12",
                ReceiveCoilManufacturerName="",
                ReceiveCoilType="MULTICOIL",
                QuadratureReceiveCoil="NO",
            )
        ]
    )
    shared.MRTransmitCoilSequence = Sequence(
        [
            _item(
                TransmitCoilName="BODY",
                TransmitCoilManufacturerName="",
                TransmitCoilType="BODY",
            )
        ]
    )
    shared.MRAveragesSequence = Sequence([_item(NumberOfAverages="1")])


def _save(ds: Dataset, path: Path, ts: str = ExplicitVRLittleEndian) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.file_meta.TransferSyntaxUID = ts
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def build_corpus(root: Path) -> Corpus:
    """Write the planted site drop under ``root`` and describe it."""
    check_unlisted_plan()
    tok, uid = Planter(), UidSource()
    drop = root / SITE / NIGHT
    dicom = drop / "dicom"
    corpus = Corpus(drop=drop, tokens=tok.tokens, uids=uid.made)
    patients = []
    for _ in range(2):
        mrn, name, accession = f"M{tok()}", f"{tok()}^{tok()}", f"AC{tok()}"
        corpus.mrns.append(mrn)
        corpus.accessions.append(accession)
        patients.append((mrn, name, accession))

    def folder(p: tuple[str, str, str], series: str) -> Path:
        # PACS-style names full of identifiers, as the data contract says sites export
        return dicom / f"{p[1].replace('^', '_')}_{p[0]}" / f"{DATE_TOKEN}_{p[2]}" / series

    def add(rel: Path, outcome: str, ds: Dataset | None = None) -> None:
        key = rel.relative_to(drop).as_posix()
        corpus.expected[key] = outcome
        if ds is not None and "PixelData" in ds:
            corpus.pixels[key] = bytes(ds.PixelData)

    def echoed(rel: Path, *keywords: str) -> None:
        corpus.echoed[rel.relative_to(drop).as_posix()] = set(keywords)

    made = []
    for index, (mrn, name, accession) in enumerate(patients):
        study, frame = uid(), uid()
        series_ct, series_mr = uid(), uid()
        sops = [uid() for _ in range(3)]
        ct = [
            _image(CT, "CT", (mrn, name), accession, study, series_ct, s, frame, tok, uid, "AX")
            for s in sops[:2]
        ]
        # referential integrity: the second CT references the first
        ref = Dataset()
        ref.ReferencedSOPClassUID = CT
        ref.ReferencedSOPInstanceUID = sops[0]
        ct[1].ReferencedImageSequence = Sequence([ref])
        mr = _image(MR, "MR", (mrn, name), accession, study, series_mr, sops[2], frame, tok, uid, "SAG T2")
        for n, ds in enumerate(ct):
            path = folder(patients[index], f"1_AX_{tok()}") / f"IM{n:04d}.dcm"
            _save(ds, path)
            add(path, "deidentified", ds)
            made.append((path, ds))
        path = folder(patients[index], "2_SAG_T2") / "IM0000.dcm"
        _save(mr, path)
        add(path, "deidentified", mr)

    mrn, name, accession = patients[0]
    base_study, base_frame = uid(), uid()

    def variant(label: str, **kw: str) -> tuple[Dataset, Path]:
        ds = _image(CT, "CT", (mrn, name), accession, base_study, uid(), uid(), base_frame, tok, uid, "AX")
        for key, value in kw.items():
            setattr(ds, key, value)
        target = folder(patients[0], f"9_{label}") / f"{label}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        return ds, target

    # character sets
    ds, path = variant("gb18030", SpecificCharacterSet="GB18030")
    ds.PatientName = GB18030_NAME
    ds.InstitutionName = GB18030_NAME
    ds.ManufacturerModelName = f"CT{GB18030_NAME}"  # no space: a CJK name is found inside a word
    _plant_charset(ds, UNLISTED_GB18030)
    _save(ds, path)
    add(path, "deidentified", ds)
    echoed(path, "ManufacturerModelName")
    # an MR series whose descriptors hide a name between vocabulary words: the manifest reads (and
    # pydicom decodes) them before cleaning, and a decoded CJK name must not pass the allow-list
    ds, path = variant("gb18030_mr", SpecificCharacterSet="GB18030", Modality="MR", SOPClassUID=MR)
    ds.file_meta.MediaStorageSOPClassUID = MR
    ds.SeriesDescription = f"SAG T2 {GB18030_NAME}"
    ds.ProtocolName = f"T1 {GB18030_NAME}"
    _save(ds, path)
    add(path, "deidentified", ds)
    ds, path = variant("utf8", SpecificCharacterSet="ISO_IR 192")
    ds.PatientName = UTF8_NAME
    ds.StudyDescription = UTF8_NAME
    ds.Manufacturer = f"{UTF8_NAME.split('^')[0]} Medical"
    _plant_charset(ds, UNLISTED_UTF8)
    _save(ds, path)
    add(path, "deidentified", ds)
    echoed(path, "Manufacturer")
    ds, path = variant("iso2022")
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = f"Yamada^Tarou={JIS_NAME}"
    ds.InstitutionName = JIS_NAME
    ds.Manufacturer = f"{JIS_NAME.split('^')[0]} Medical"
    _plant_charset(ds, UNLISTED_JIS)
    _save(ds, path)
    add(path, "deidentified", ds)
    echoed(path, "Manufacturer")
    # the file's own identifiers typed into the free text the retention list keeps (equipment names,
    # software versions, code strings): in ISO_IR 100 here, in the file's own character set above
    ds, path = variant("echo")
    ds.Manufacturer = name.replace("^", " ")
    ds.ManufacturerModelName = f"CT-{mrn}"
    ds.SoftwareVersions = f"V1 {ISO_DATE_TOKEN}"  # the birth date, written with separators
    ds.BodyPartExamined = name.split("^")[0]  # a surname has the form of a code string
    ds.SequenceName = f"*{accession}"
    _save(ds, path)
    add(path, "deidentified", ds)
    echoed(
        path, "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "BodyPartExamined", "SequenceName"
    )
    # the other supported IODs: the same planted header, made a DX, a CR, an Enhanced CT and MR
    for label, make in (("dx", _as_dx), ("cr", _as_cr), ("enhanced_ct", _as_enhanced_ct),
                        ("enhanced_mr", _as_enhanced_mr)):  # fmt: skip
        ds, path = variant(label)
        make(ds, uid)
        _save(ds, path)
        add(path, "deidentified", ds)
    # transfer syntaxes
    for label, ts in (("implicit", ImplicitVRLittleEndian), ("bigendian", ExplicitVRBigEndian)):
        ds, path = variant(label)
        _save(ds, path, ts)
        add(path, "deidentified", ds)
    ds, path = variant("deflated")
    _save(ds, path, DeflatedExplicitVRLittleEndian)
    add(path, "deidentified", ds)
    ds, path = variant("jpeg")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0" + bytes(range(16)) * 8 + b"\xff\xd9"] * 2)
    ds.NumberOfFrames = 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds["PixelData"].VR = "OB"
    _save(ds, path, JPEGBaseline8Bit)
    add(path, "deidentified", ds)
    # missing preamble (file meta present) and no file meta at all
    ds, path = variant("nopreamble")
    data = _save(ds, path)
    path.write_bytes(data[132:])
    add(path, "deidentified", ds)
    ds, path = variant("nometa")
    buffer = io.BytesIO()
    ds.file_meta = FileMetaDataset()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    path.write_bytes(buffer.getvalue())
    add(path, "deidentified", ds)
    # bad inputs
    ds, path = variant("truncated_pixels")
    data = _save(ds, path)
    pixel_at = data.rindex(b"\xe0\x7f\x10\x00OW")
    path.write_bytes(data[: pixel_at + 12 + len(bytes(ds.PixelData)) // 2])
    add(path, "quarantined")
    ds, path = variant("truncated_header")
    data = _save(ds, path)
    path.write_bytes(data[: data.index(b"\x28\x00\x10\x00US") + 4])  # cut inside Rows (0028,0010)
    add(path, "quarantined")
    text = folder(patients[0], "9_notes") / f"notes_{tok()}.txt"
    text.parent.mkdir(parents=True)
    text.write_text(f"patient {name} mrn {mrn} {tok()}\n", encoding="utf-8")
    add(text, "quarantined")
    empty = folder(patients[0], "9_notes") / "empty.dcm"
    empty.write_bytes(b"")
    add(empty, "quarantined")
    png = folder(patients[0], "9_notes") / "scan.dcm"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + zlib.compress(tok().encode() * 20))
    add(png, "quarantined")
    # burned-in text: a secondary capture and a CT flagged YES, both with the token in the pixels
    ds, path = variant("sc")
    ds.SOPClassUID = SC
    ds.file_meta.MediaStorageSOPClassUID = SC
    ds.PixelData = (tok() * 64).encode()[: 16 * 16 * 2]
    _save(ds, path)
    add(path, "quarantined")
    ds, path = variant("burned", BurnedInAnnotation="YES")
    ds.PixelData = (tok() * 64).encode()[: 16 * 16 * 2]
    _save(ds, path)
    add(path, "quarantined")
    # the same SOP instance twice (a resend under another folder name)
    first_path = made[0][0]
    again = dicom / f"resend_{tok()}" / "IM0000.dcm"
    again.parent.mkdir(parents=True)
    again.write_bytes(first_path.read_bytes())
    add(again, "duplicate")
    _write_tables(drop, patients, tok)
    return corpus


def _write_tables(drop: Path, patients: list[tuple[str, str, str]], tok: Planter) -> None:
    with (drop / "clinical.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["mrn", "patient_name", "birth_date", "sex", "address", "phone", "height_cm", "weight_kg", "bmi",
             "dxa_t_score", "diagnosis", "pathology_confirmed", "primary_tumour", "first_exam_date"]
        )  # fmt: skip
        for mrn, name, _ in patients:
            writer.writerow(
                [mrn, name, ISO_DATE_TOKEN, "F", f"{tok()} Street 1", f"+41 {tok()}", "160", "61", "23.83",
                 "-2.9", "OP", "no", "", "2024-03-01"]
            )  # fmt: skip
    findings = ["yes", "no", "no", "no", "no", "no", "yes", "no", "no", "yes", "no", "no"]
    with (drop / "reads.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["mrn", "accession_number", "modality", "level", "reader", "read_date", "fracture_line",
             "marrow_oedema", "soft_tissue_mass", "bone_destruction", "posterior_wall_bulging",
             "posterior_element_involvement", "wedge_shape", "posterior_fat_signal", "intravertebral_cleft",
             "normal_disc", "disc_compression", "whole_body_collapse", "genant_grade", "height_loss_pct"]
        )  # fmt: skip
        for mrn, _, accession in patients:
            writer.writerow([mrn, accession, "CT", "L1", f"Dr {tok()}", "2024-03-02", *findings, "2", "31.5"])


# -- the leak scanner -------------------------------------------------------------------------------
_ENCODINGS = ("utf-8", "gb18030", "utf-16-le", "utf-16-be", "iso2022_jp", "latin-1")


def _needles(token: str) -> set[bytes]:
    found = set()
    for encoding in _ENCODINGS:
        try:
            encoded = token.encode(encoding)
        except UnicodeEncodeError:
            continue
        if encoding == "iso2022_jp" and encoded.startswith(b"\x1b"):
            encoded = encoded[3:]  # the JIS bytes without the escape sequences around them
            encoded = encoded[:-3] if encoded.endswith(b"\x1b(B") else encoded
        found.add(encoded)
    return found


def _decoded_text(path: Path) -> str:
    """Every string value of a DICOM file, decoded with its character sets (sequences included)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:
        return ""
    parts: list[str] = []

    def walk(item: Dataset) -> None:
        for elem in item:
            if elem.VR == "SQ":
                for child in elem.value:
                    walk(child)
            elif elem.VR not in ("OB", "OW", "UN", "OF", "OD", "OL", "OV"):
                parts.append(str(elem.value))

    walk(ds.file_meta)
    walk(ds)
    return "\n".join(parts)


def _inflated(data: bytes) -> bytes:
    """The inflated dataset of a deflated file (empty if it is not one)."""
    if DeflatedExplicitVRLittleEndian.encode() not in data[:400]:
        return b""
    meta_length = int.from_bytes(data[140:144], "little")
    try:
        return zlib.decompress(data[144 + meta_length :], -15)
    except zlib.error:
        return b""


#: every planted ASCII token and original UID matches one of these (in ASCII/UTF-8/GB18030/Latin-1
#: bytes, and in UTF-16 of either byte order)
_TOKEN = r"QZ[0-9]{5}K"
_UID = r"1\.2\.826\.0\.1\.3680043\.9\.7777\.[0-9.]*[0-9]"


def _utf16(prefix: str, tail: str, order: str) -> re.Pattern[bytes]:
    """A literal prefix then a tail class, each character one UTF-16 code unit."""
    unit = "{}\x00" if order == "le" else "\x00{}"
    body = "".join(unit.format(re.escape(c)) for c in prefix) + tail.format(unit.format("[0-9]"))
    return re.compile(body.encode("latin-1"))


_PATTERNS = [re.compile(p.encode()) for p in (_TOKEN, _UID)] + [
    pattern
    for order in ("le", "be")
    for pattern in (
        re.compile(
            _utf16("QZ", "(?:{}){{5}}", order).pattern + ("K\x00" if order == "le" else "\x00K").encode()
        ),
        _utf16("1.2.826.0.1.3680043.9.7777.", "(?:{})+", order),  # the first component suffices
    )
]
_TEXT_PATTERNS = [re.compile(p) for p in (_TOKEN, _UID)]


def find_leaks(root: Path, literal_tokens: list[str], extra_text: str = "") -> list[str]:
    """Every place under ``root`` (paths, raw and inflated bytes, decoded DICOM text) and in
    ``extra_text`` (logs) where a planted token survives: any ``QZnnnnnK`` token or original
    ``1.2.826.0.1.3680043.9.7777.*`` UID in any encoding, and any of ``literal_tokens`` (dates,
    non-ASCII names) in every encoding of :data:`_ENCODINGS`."""
    needles = {token: _needles(token) for token in literal_tokens}
    hits = []

    def text_hits(where: str, text: str) -> None:
        for pattern in _TEXT_PATTERNS:
            hits.extend(f"{where}: {m}" for m in pattern.findall(text))
        hits.extend(f"{where}: {t}" for t in literal_tokens if t in text)

    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        text_hits(f"path {relative}", relative)
        if not path.is_file():
            continue
        data = path.read_bytes()
        for blob in (data, _inflated(data)):
            for pattern in _PATTERNS:
                hits.extend(f"file {relative}: {m!r}" for m in pattern.findall(blob))
            for token, encoded in needles.items():
                if any(n in blob for n in encoded):
                    hits.append(f"file {relative}: {token}")
        if path.suffix == ".dcm":
            text_hits(f"text {relative}", _decoded_text(path))
    text_hits("log", extra_text)
    return hits


# -- sharing an expensive fixture between pytest-xdist workers ----------------------------------------
def shared_build(base: Path, name: str, build: Callable[[Path], Any]) -> Any:
    """Build ``name`` once per test session even when xdist spreads its tests over workers.

    ``base`` is ``tmp_path_factory.getbasetemp()``; under xdist its parent is shared by all workers,
    so the first worker builds under an exclusive ``flock`` and the others load the pickled result.
    """
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"{name}.pickle"
        if not done.exists():
            target.mkdir(parents=True, exist_ok=True)
            done.write_bytes(pickle.dumps(build(target)))
        return pickle.loads(done.read_bytes())
