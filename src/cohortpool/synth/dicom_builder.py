"""DICOM headers and pixels for one patient's three studies, as a PACS export carries them.

Headers are deliberately full of PHI, in all the places real ones hide it: patient and staff names,
addresses, phone numbers, the MRN and accession number (also inside OtherPatientIDsSequence and
RequestAttributesSequence), a private block of the hospital's PACS, free-text comments naming the patient,
UIDs under the hospital's root, and ReferencedImageSequence pointing at the patient's other instances.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from cohortpool.synth.cohort import Cohort, Patient, Study, completed_years
from cohortpool.synth.encoder import SeriesEncoder, encode_elements
from cohortpool.synth.pixels import BITS_STORED, image
from cohortpool.synth.vendors import EXPLICIT_LE, IMPLICIT_LE, SOP_CT, SOP_MR, MrProtocol, SiteProfile

PRIVATE_CREATOR = "ACME HOSPITAL PACS"
IMPLEMENTATION_VERSION = "ACMEPACS_4_1"


@dataclass(frozen=True)
class Sizes:
    """Matrix sizes and series lengths: small for the demo, realistic with ``--full-size``."""

    xr: tuple[int, int]
    ct: tuple[int, int]
    ct_slices: tuple[int, int]
    mr_sag: tuple[int, int]
    mr_ax: tuple[int, int]
    mr_slices: tuple[int, int]


SMALL = Sizes(xr=(64, 64), ct=(64, 64), ct_slices=(4, 4), mr_sag=(64, 64), mr_ax=(64, 64), mr_slices=(3, 3))
FULL = Sizes(
    xr=(2048, 2048),
    ct=(512, 512),
    ct_slices=(60, 120),
    mr_sag=(420, 280),
    mr_ax=(280, 458),
    mr_slices=(15, 20),
)


@dataclass(frozen=True)
class SeriesPlan:
    """One series to write: what it is and how many images."""

    number: int
    description: str
    kind: str  # XR, CT, MR
    count: int
    rows: int
    cols: int
    view: str = ""  # XR: AP or LL
    protocol: MrProtocol | None = None


def safe_name(text: str) -> str:
    """A folder-name form of a description, as PACS exporters write them."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "SERIES"


def _da(day: dt.date) -> str:
    return f"{day:%Y%m%d}"


def _plus_minutes(hhmmss: str, minutes: int) -> str:
    t = dt.datetime(2000, 1, 1, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]))
    return f"{t + dt.timedelta(minutes=minutes):%H%M%S}"


def series_plans(
    profile: SiteProfile, modality: str, sizes: Sizes, rng: np.random.Generator
) -> list[SeriesPlan]:
    """The series of one study at this site."""
    if modality == "XR":
        rows, cols = sizes.xr
        return [
            SeriesPlan(1, "L-SPINE AP", "XR", 1, rows, cols, view="AP"),
            SeriesPlan(2, "L-SPINE LAT", "XR", 1, rows, cols - (cols // 8 if cols > 64 else 0), view="LL"),
        ]
    if modality == "CT":
        lo, hi = sizes.ct_slices
        count = int(rng.integers(lo, hi + 1))
        return [SeriesPlan(2, f"Spine {profile.ct_slice_thickness:g}mm", "CT", count, *sizes.ct)]
    plans = []
    for k, proto in enumerate(profile.mr_protocols):
        lo, hi = sizes.mr_slices
        rows, cols = sizes.mr_sag if proto.plane == "SAG" else sizes.mr_ax
        plans.append(
            SeriesPlan(
                301 + 100 * k,
                proto.description,
                "MR",
                int(rng.integers(lo, hi + 1)),
                rows,
                cols,
                protocol=proto,
            )
        )
    return plans


class UidMaker:
    """UIDs under the site's (fake) root: deterministic in seed, patient, study, series, instance."""

    def __init__(self, profile: SiteProfile, seed: int, patient: Patient) -> None:
        self.base = f"{profile.uid_root}.{seed}"
        self.p = patient.index + 1

    def study(self, s: int) -> str:
        return f"{self.base}.1.{self.p}.{s}"

    def series(self, s: int, series: int) -> str:
        return f"{self.base}.2.{self.p}.{s}.{series}"

    def instance(self, s: int, series: int, i: int) -> str:
        return f"{self.base}.3.{self.p}.{s}.{series}.{i}"

    def frame(self, s: int) -> str:
        return f"{self.base}.4.{self.p}.{s}"


def _patient_module(ds: Dataset, cohort: Cohort, p: Patient, study: Study) -> None:
    ds.PatientName = p.name.pn
    ds.PatientID = p.mrn
    ds.IssuerOfPatientID = cohort.profile.institution
    ds.PatientBirthDate = _da(p.birth_date)
    ds.PatientSex = p.sex
    ds.PatientAge = f"{completed_years(p.birth_date, study.date):03d}Y"
    ds.PatientSize = f"{p.height_cm / 100:.2f}"
    ds.PatientWeight = f"{p.weight_kg:.1f}"
    ds.PatientAddress = p.address
    ds.PatientTelephoneNumbers = p.phone
    other = Dataset()
    other.PatientID = p.other_id
    other.IssuerOfPatientID = "NATIONAL HEALTH ID"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientComments = f"{p.name.display}, MRN {p.mrn}; contact {p.phone}"
    history = "back pain after minor fall" if p.diagnosis == "OP" else f"known {p.primary_tumour} cancer"
    ds.AdditionalPatientHistory = f"{history}; referred by {study.referring.display}"


def _study_module(
    ds: Dataset, cohort: Cohort, p: Patient, study: Study, study_no: int, uids: UidMaker
) -> None:
    profile = cohort.profile
    ds.StudyInstanceUID = uids.study(study_no)
    ds.StudyDate = _da(study.date)
    ds.StudyTime = study.time
    ds.AccessionNumber = study.accession
    ds.StudyID = study.study_id
    ds.ReferringPhysicianName = study.referring.pn
    ds.PhysiciansOfRecord = study.referring.pn
    ds.NameOfPhysiciansReadingStudy = study.reader.pn
    ds.OperatorsName = study.operator.pn
    ds.InstitutionName = profile.institution
    ds.InstitutionAddress = profile.institution_address
    ds.InstitutionalDepartmentName = profile.department
    desc = {"XR": "SPINE X-RAY AP/LAT", "CT": "CT SPINE", "MR": "MRI SPINE"}[study.modality]
    if profile.name_style == "zh":
        desc = {"XR": "脊柱正侧位", "CT": "脊柱CT平扫", "MR": "脊柱MRI平扫"}[study.modality]
    ds.StudyDescription = desc
    request = Dataset()
    request.AccessionNumber = study.accession
    request.RequestedProcedureID = f"RP{study.study_id}"
    request.ScheduledProcedureStepID = f"SPS{study.study_id}"
    request.RequestedProcedureDescription = desc
    request.ScheduledProcedureStepDescription = f"{desc} for {p.name.display}"
    ds.RequestAttributesSequence = Sequence([request])
    ds.RequestingPhysician = study.referring.pn
    ds.PerformedProcedureStepStartDate = _da(study.date)
    ds.PerformedProcedureStepStartTime = study.time
    ds.PerformedProcedureStepID = f"PPS{study.study_id}"


def _private_block(ds: Dataset, profile: SiteProfile, p: Patient, study: Study) -> None:
    block = ds.private_block(profile.private_group, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p.mrn)
    block.add_new(0x02, "PN", p.name.pn)
    block.add_new(0x03, "LO", study.accession)
    block.add_new(0x04, "DA", _da(p.birth_date))
    block.add_new(0x05, "LT", f"Exported for {p.name.display} ({p.mrn}) by {study.operator.display}")


def _equipment(ds: Dataset, profile: SiteProfile, kind: str) -> None:
    equipment = {"XR": profile.xr, "CT": profile.ct, "MR": profile.mr}[kind]
    ds.Manufacturer = equipment.manufacturer
    ds.ManufacturerModelName = equipment.model
    ds.StationName = equipment.station
    ds.DeviceSerialNumber = equipment.serial
    ds.SoftwareVersions = equipment.software


def _pixel_module(ds: Dataset, rows: int, cols: int, photometric: str = "MONOCHROME2") -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0


def _series_specific(p: Patient, study: Study, study_no: int, plan: SeriesPlan, uids: UidMaker) -> Dataset:
    """The series elements that name this patient's series (dates, UIDs, comments)."""
    ds = Dataset()
    series_time = _plus_minutes(study.time, plan.number % 60)
    for attr in ("SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        setattr(ds, attr, _da(study.date))
    for attr in ("SeriesTime", "AcquisitionTime", "ContentTime", "InstanceCreationTime"):
        setattr(ds, attr, series_time)
    ds.SeriesInstanceUID = uids.series(study_no, plan.number)
    if plan.kind != "XR":
        ds.FrameOfReferenceUID = uids.frame(study_no)
    ds.ImageComments = f"{p.name.display} {p.mrn} {plan.description}"
    return ds


def _protocol_base(profile: SiteProfile, plan: SeriesPlan, fov_ct: float) -> Dataset:
    """The series elements the scanner's protocol fixes: the same for every patient of the site."""
    ds = Dataset()
    _equipment(ds, profile, plan.kind)
    ds.SeriesNumber = plan.number
    ds.SeriesDescription = plan.description
    ds.ProtocolName = plan.description
    ds.BodyPartExamined = "SPINE"
    if plan.kind != "XR":
        ds.PatientPosition = "HFS"
    _pixel_module(
        ds,
        plan.rows,
        plan.cols,
        "MONOCHROME1" if profile.xr_modality == "CR" and plan.kind == "XR" else "MONOCHROME2",
    )
    if plan.kind == "XR":
        ds.Modality = profile.xr_modality
        ds.SOPClassUID = profile.xr_sop_class
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ViewPosition = plan.view
        ds.PatientOrientation = ["L", "F"] if plan.view == "AP" else ["A", "F"]
        ds.KVP = 85.0 if plan.view == "AP" else 90.0
        ds.ExposureInuAs = 20000 if plan.view == "AP" else 32000
        ds.DistanceSourceToDetector = 1150.0
        ds.ImagerPixelSpacing = [0.139, 0.139] if plan.rows > 64 else [4.4, 4.4]
        ds.BurnedInAnnotation = "NO"
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
        ds.AnatomicRegionSequence = _spine_code()
        if profile.xr_modality == "DX":
            ds.PresentationIntentType = "FOR PRESENTATION"
            ds.PixelIntensityRelationship = "LOG"
            ds.PixelIntensityRelationshipSign = 1
            ds.ImageLaterality = "U"  # unpaired body part
            ds.PresentationLUTShape = "IDENTITY"
            ds.LossyImageCompression = "00"
            ds.DetectorType = "SCINTILLATOR"
            ds.PositionerType = "NONE"
            ds.AcquisitionContextSequence = Sequence()
        ds.WindowCenter = 2048
        ds.WindowWidth = 4096
    elif plan.kind == "CT":
        ds.Modality = "CT"
        ds.SOPClassUID = SOP_CT
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PositionReferenceIndicator = ""
        ds.AcquisitionNumber = 1
        ds.KVP = profile.ct_kvp
        ds.SliceThickness = profile.ct_slice_thickness
        ds.ConvolutionKernel = profile.ct_kernel
        ds.XRayTubeCurrent = 250
        ds.ExposureTime = 1000
        ds.GantryDetectorTilt = 0
        ds.ReconstructionDiameter = fov_ct
        ds.PixelSpacing = [round(fov_ct / plan.cols, 6)] * 2
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 400
        ds.WindowWidth = 1800
    else:
        proto = plan.protocol
        assert proto is not None  # MR plans always carry their protocol
        ds.Modality = "MR"
        ds.SOPClassUID = SOP_MR
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.PositionReferenceIndicator = ""
        ds.AcquisitionNumber = 1
        ds.ScanningSequence = proto.scanning_sequence.split("\\")
        ds.SequenceVariant = proto.sequence_variant.split("\\")
        ds.ScanOptions = proto.scan_options.split("\\")
        ds.MRAcquisitionType = "2D"
        ds.SliceThickness = proto.slice_thickness
        ds.SpacingBetweenSlices = proto.slice_thickness + proto.slice_gap
        ds.RepetitionTime = proto.repetition_time
        ds.EchoTime = proto.echo_time
        if proto.inversion_time is not None:
            ds.InversionTime = proto.inversion_time
        ds.EchoTrainLength = proto.echo_train_length
        ds.NumberOfAverages = 2
        ds.MagneticFieldStrength = profile.mr_field_strength
        ds.ImagingFrequency = round(42.577478 * profile.mr_field_strength, 6)
        ds.ImagedNucleus = "1H"
        ds.AcquisitionMatrix = [0, proto.acquisition_matrix[0], proto.acquisition_matrix[1], 0]
        ds.PixelSpacing = [round(proto.fov_mm / max(plan.rows, plan.cols), 6)] * 2
        ds.ReceiveCoilName = "SPINE"
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1] if proto.plane == "SAG" else [1, 0, 0, 0, 1, 0]
        ds.WindowCenter = 600
        ds.WindowWidth = 1200
    return ds


def _study_base(cohort: Cohort, p: Patient, study: Study, study_no: int, uids: UidMaker) -> Dataset:
    """The elements every instance of a study shares: patient, study, the PACS's private block."""
    ds = Dataset()
    ds.SpecificCharacterSet = cohort.profile.charset
    _patient_module(ds, cohort, p, study)
    _study_module(ds, cohort, p, study, study_no, uids)
    _private_block(ds, cohort.profile, p, study)
    return ds


def _spine_code() -> Sequence:
    """AnatomicRegionSequence for BodyPartExamined SPINE (PS3.16 CID 4031: SCT 421060004)."""
    item = Dataset()
    item.CodeValue = "421060004"
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = "Spine"
    return Sequence([item])


def _encoded_reference(ref: tuple[str, str], implicit: bool) -> bytes:
    """ReferencedImageSequence pointing at another instance (class, UID) of the patient, encoded."""
    item = Dataset()
    item.ReferencedSOPClassUID = ref[0]
    item.ReferencedSOPInstanceUID = ref[1]
    ds = Dataset()
    ds.ReferencedImageSequence = Sequence([item])
    return encode_elements(ds, implicit, "ISO_IR 6")[0x00081140]


#: the elements that differ between the instances of a series (everything else is encoded once)
VARYING = (0x00080018, 0x00081140, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)


def instance_elements(
    sop_uid: str, number: int, position: list[float] | None, ref: bytes | None, pixels: bytes
) -> dict[int, DataElement | bytes]:
    """The per-instance elements of :data:`VARYING` (an instance's identity, place and pixels).

    ``ref`` is the encoded ReferencedImageSequence (shared by most instances of a study).
    """
    elements: dict[int, DataElement | bytes] = {
        0x00080018: DataElement(0x00080018, "UI", sop_uid),
        0x00200013: DataElement(0x00200013, "IS", number),
        0x7FE00010: DataElement(0x7FE00010, "OW", pixels),
    }
    if position is not None:
        elements[0x00200032] = DataElement(0x00200032, "DS", position)
        elements[0x00201041] = DataElement(
            0x00201041, "DS", position[0] if position[1] == -150.0 else position[2]
        )
    if ref is not None:
        elements[0x00081140] = ref
    return elements


#: encoded protocol-level elements, keyed by (plan, CT field of view, implicit VR); one per site
ProtocolCache = dict[tuple[SeriesPlan, float, bool], dict[int, bytes]]


def patient_instances(
    cohort: Cohort, p: Patient, seed: int, sizes: Sizes, cache: ProtocolCache | None = None
) -> Iterator[tuple[str, str, bytes]]:
    """Every instance of a patient: (relative folder, file name, the file's bytes).

    ``cache`` (one per site) keeps the encoded protocol elements between patients.
    """
    cache = {} if cache is None else cache
    profile = cohort.profile
    uids = UidMaker(profile, seed, p)
    patient_dir = f"{p.name.ascii_upper}_{p.mrn}"
    first_xr: tuple[str, str] | None = None
    refs: dict[tuple[tuple[str, str], bool], bytes] = {}
    for study_no, modality in enumerate(("XR", "CT", "MR"), start=1):
        study = p.studies[modality]
        rng = np.random.default_rng([seed, profile.number, p.index, study_no])
        study_dir = f"{_da(study.date)}_{study.accession}"
        fov_ct = float(rng.choice([320.0, 350.0, 380.0]))
        study_first: tuple[str, str] | None = None
        study_ds = _study_base(cohort, p, study, study_no, uids)
        study_encoded: dict[bool, dict[int, bytes]] = {}
        for plan in series_plans(profile, modality, sizes, rng):
            tsyntax = profile.ct_transfer_syntax if plan.kind == "CT" else EXPLICIT_LE
            implicit = tsyntax == IMPLICIT_LE
            key = (plan, fov_ct, implicit)
            if key not in cache:
                cache[key] = encode_elements(_protocol_base(profile, plan, fov_ct), implicit, profile.charset)
            if implicit not in study_encoded:
                study_encoded[implicit] = encode_elements(study_ds, implicit, profile.charset)
            specific = _series_specific(p, study, study_no, plan, uids)
            encoded = {
                **study_encoded[implicit],
                **cache[key],
                **encode_elements(specific, implicit, profile.charset),
            }
            sop_class = {"XR": profile.xr_sop_class, "CT": SOP_CT, "MR": SOP_MR}[plan.kind]
            slice_step = plan.protocol.slice_thickness + plan.protocol.slice_gap if plan.protocol else 0.0
            meta = _file_meta(profile, sop_class, None, tsyntax)
            encoder = SeriesEncoder(encoded, VARYING, implicit, profile.charset, meta)
            folder = f"{patient_dir}/{study_dir}/{plan.number}_{safe_name(plan.description)}"
            for i in range(1, plan.count + 1):
                sop_uid = uids.instance(study_no, plan.number, i)
                position: list[float] | None = None
                if plan.kind in ("CT", "MR"):
                    spacing = slice_step if plan.kind == "MR" else profile.ct_slice_thickness
                    pos = round((i - (plan.count + 1) / 2) * spacing, 3)
                    sag = plan.protocol is not None and plan.protocol.plane == "SAG"
                    position = [pos, -150.0, 200.0] if sag else [-175.0, -175.0, pos]
                pixels = image(plan.kind, plan.rows, plan.cols, rng)
                ref = study_first or first_xr
                ref_bytes = None
                if ref is not None:
                    if (ref, implicit) not in refs:
                        refs[ref, implicit] = _encoded_reference(ref, implicit)
                    ref_bytes = refs[ref, implicit]
                elements = instance_elements(sop_uid, i, position, ref_bytes, pixels)
                if study_first is None:
                    study_first = (sop_class, sop_uid)
                if first_xr is None:
                    first_xr = study_first
                yield folder, f"IM{i:04d}.dcm", encoder.encode(sop_uid, elements)


def _file_meta(profile: SiteProfile, sop_class: str, sop_uid: str | None, tsyntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    if sop_uid is not None:
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(tsyntax)
    meta.ImplementationClassUID = UID(f"{profile.uid_root}.0.1")
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    meta.SourceApplicationEntityTitle = f"PACS{profile.number:02d}"
    return meta


def file_meta(profile: SiteProfile, sop_class: str, sop_uid: str) -> FileMetaDataset:
    """File Meta for an Explicit VR Little Endian file (used for the planted screenshot)."""
    return _file_meta(profile, sop_class, sop_uid, EXPLICIT_LE)
