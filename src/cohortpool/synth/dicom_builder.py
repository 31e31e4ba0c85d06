"""DICOM files for one patient's three studies, as a PACS export carries them.

Each instance references another of the patient's instances (ReferencedImageSequence), as viewers and
modalities write them; everything else in the header comes from :mod:`cohortpool.synth.headers`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from cohortpool.synth.cohort import Cohort, Patient
from cohortpool.synth.encoder import SeriesEncoder, encode_elements
from cohortpool.synth.headers import (
    PRIVATE_CREATOR,
    UidMaker,
    protocol_base,
    series_specific,
    study_base,
)
from cohortpool.synth.pixels import image
from cohortpool.synth.series import FULL, SMALL, SeriesPlan, Sizes, da, safe_name, series_plans
from cohortpool.synth.vendors import EXPLICIT_LE, IMPLICIT_LE, SOP_CT, SOP_MR, SiteProfile

IMPLEMENTATION_VERSION = "ACMEPACS_4_1"

__all__ = ["FULL", "PRIVATE_CREATOR", "SMALL", "ProtocolCache", "file_meta", "patient_instances"]


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
        study_dir = f"{da(study.date)}_{study.accession}"
        fov_ct = float(rng.choice([320.0, 350.0, 380.0]))
        study_first: tuple[str, str] | None = None
        study_ds = study_base(cohort, p, study, study_no, uids)
        study_encoded: dict[bool, dict[int, bytes]] = {}
        for plan in series_plans(profile, modality, sizes, rng):
            tsyntax = profile.ct_transfer_syntax if plan.kind == "CT" else EXPLICIT_LE
            implicit = tsyntax == IMPLICIT_LE
            key = (plan, fov_ct, implicit)
            if key not in cache:
                cache[key] = encode_elements(protocol_base(profile, plan, fov_ct), implicit, profile.charset)
            if implicit not in study_encoded:
                study_encoded[implicit] = encode_elements(study_ds, implicit, profile.charset)
            specific = series_specific(p, study, study_no, plan, uids)
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
