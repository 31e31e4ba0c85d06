"""Header elements of a PACS export: patient, study, series and protocol modules, full of PHI.

Headers are deliberately full of PHI, in all the places real ones hide it: patient and staff names,
addresses, phone numbers, the MRN and accession number (also inside OtherPatientIDsSequence and
RequestAttributesSequence), a private block of the hospital's PACS, free-text comments naming the patient,
and UIDs under the hospital's root. Elements are grouped by how widely they are shared (study, protocol,
series) so the encoder encodes each group once.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cohortpool.synth.cohort import Cohort, Patient, Study, completed_years
from cohortpool.synth.pixels import BITS_STORED
from cohortpool.synth.series import SeriesPlan, da, plus_minutes
from cohortpool.synth.vendors import SOP_CT, SOP_MR, SiteProfile

PRIVATE_CREATOR = "ACME HOSPITAL PACS"


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
    ds.PatientBirthDate = da(p.birth_date)
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
    ds.StudyDate = da(study.date)
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
    ds.PerformedProcedureStepStartDate = da(study.date)
    ds.PerformedProcedureStepStartTime = study.time
    ds.PerformedProcedureStepID = f"PPS{study.study_id}"


def _private_block(ds: Dataset, profile: SiteProfile, p: Patient, study: Study) -> None:
    block = ds.private_block(profile.private_group, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p.mrn)
    block.add_new(0x02, "PN", p.name.pn)
    block.add_new(0x03, "LO", study.accession)
    block.add_new(0x04, "DA", da(p.birth_date))
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


def series_specific(p: Patient, study: Study, study_no: int, plan: SeriesPlan, uids: UidMaker) -> Dataset:
    """The series elements that name this patient's series (dates, UIDs, comments)."""
    ds = Dataset()
    series_time = plus_minutes(study.time, plan.number % 60)
    for attr in ("SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        setattr(ds, attr, da(study.date))
    for attr in ("SeriesTime", "AcquisitionTime", "ContentTime", "InstanceCreationTime"):
        setattr(ds, attr, series_time)
    ds.SeriesInstanceUID = uids.series(study_no, plan.number)
    if plan.kind != "XR":
        ds.FrameOfReferenceUID = uids.frame(study_no)
    ds.ImageComments = f"{p.name.display} {p.mrn} {plan.description}"
    return ds


def protocol_base(profile: SiteProfile, plan: SeriesPlan, fov_ct: float) -> Dataset:
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


def study_base(cohort: Cohort, p: Patient, study: Study, study_no: int, uids: UidMaker) -> Dataset:
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
