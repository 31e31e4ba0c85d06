"""Per-site equipment, protocols and identifier formats of the synthetic consortium.

Site 1 carries the reference study's equipment and MRI protocol (``vcf_paper.md``: Kodak DR, Siemens
SOMATOM Definition AS, Philips Ingenia 3.0 T, sagittal T1/T2/SPAIR and axial T2 at 3 mm). The other sites
get other vendors, field strengths, character sets and identifier formats, because that heterogeneity is
what the pooling pipeline has to survive. All names, addresses, serial numbers and UID roots are invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# DICOM PS3.4 storage SOP classes used by the generator
SOP_DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
SOP_CR = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
SOP_CT = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
SOP_MR = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
SOP_SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"

#: invented enterprise-number root; each site gets ``<root>.<site number>``. Not a registered root.
FAKE_UID_ROOT = "1.3.6.1.4.1.99990"


@dataclass(frozen=True)
class MrProtocol:
    """One MRI series as the scanner's protocol names and parameters it."""

    description: str
    plane: str  # "SAG" or "TRA"
    weighting: str  # "T1", "T2", "FS" (fat-suppressed T2)
    repetition_time: float  # ms
    echo_time: float  # ms
    scanning_sequence: str
    sequence_variant: str
    scan_options: str
    slice_thickness: float = 3.0
    slice_gap: float = 0.5
    fov_mm: float = 380.0
    acquisition_matrix: tuple[int, int] = (420, 280)  # frequency x phase
    echo_train_length: int = 15
    inversion_time: float | None = None


@dataclass(frozen=True)
class Equipment:
    """One imaging device as its headers describe it."""

    manufacturer: str
    model: str
    station: str
    serial: str
    software: str


@dataclass(frozen=True)
class SiteProfile:
    """Everything site-specific about how a hospital's exports look."""

    site_id: str
    number: int
    institution: str
    institution_address: str
    department: str
    charset: str  # SpecificCharacterSet
    name_style: str  # "zh" or "en"
    mrn_prefix: str
    mrn_digits: int
    accession_prefix: str
    xr_modality: str  # "DX" or "CR"
    xr: Equipment
    ct: Equipment
    ct_kvp: float
    ct_kernel: str
    ct_slice_thickness: float
    ct_transfer_syntax: str
    mr: Equipment
    mr_field_strength: float
    mr_protocols: tuple[MrProtocol, ...]
    n_op: int
    n_met: int
    private_group: int = 0x0011

    @property
    def uid_root(self) -> str:
        return f"{FAKE_UID_ROOT}.{self.number}"

    @property
    def xr_sop_class(self) -> str:
        return SOP_DX if self.xr_modality == "DX" else SOP_CR


# ScanOptions FS means fat saturation (PS3.3 C.8.3.1): only the SPAIR series carries it
PHILIPS_PROTOCOLS = (
    MrProtocol("sT1W_TSE", "SAG", "T1", 600.0, 12.0, "SE", "SK", "PFP", echo_train_length=4),
    MrProtocol("sT2W_TSE", "SAG", "T2", 2900.0, 110.0, "SE", "SK", "PFP", echo_train_length=18),
    MrProtocol("sT2W_SPAIR", "SAG", "FS", 6700.0, 180.0, "SE", "SK", "FS", echo_train_length=24),
    MrProtocol(
        "T2W_TSE_tra",
        "TRA",
        "T2",
        2900.0,
        129.0,
        "SE",
        "SK",
        "PFP",
        fov_mm=280.0,
        acquisition_matrix=(458, 280),
    ),
)

SIEMENS_PROTOCOLS = (
    MrProtocol("t1_tse_sag", "SAG", "T1", 550.0, 10.0, "SE", "SK\\SP", "SAT1", echo_train_length=3),
    MrProtocol("t2_tse_sag", "SAG", "T2", 3500.0, 96.0, "SE", "SK\\SP\\OSP", "SAT1", echo_train_length=17),
    MrProtocol(
        "t2_tirm_sag",
        "SAG",
        "FS",
        4500.0,
        64.0,
        "SE\\IR",
        "SK\\SP\\MP",
        "IR",
        inversion_time=220.0,
        echo_train_length=13,
    ),
    MrProtocol("t2_tse_tra", "TRA", "T2", 4000.0, 101.0, "SE", "SK\\SP", "SAT1", fov_mm=200.0),
)

GE_PROTOCOLS = (
    MrProtocol("Sag T1 FSE", "SAG", "T1", 620.0, 9.5, "SE", "SK", "FAST_GEMS", slice_thickness=4.0),
    MrProtocol("Sag T2 FSE", "SAG", "T2", 3200.0, 102.0, "SE", "SK", "FAST_GEMS", slice_thickness=4.0),
    MrProtocol("Sag T2 FS", "SAG", "FS", 3600.0, 85.0, "SE", "SK", "FAST_GEMS\\FS", slice_thickness=4.0),
    MrProtocol("Ax T2 FSE", "TRA", "T2", 3800.0, 105.0, "SE", "SK", "FAST_GEMS", fov_mm=200.0),
)

CANON_PROTOCOLS = (
    MrProtocol("T1_FSE_SAG", "SAG", "T1", 500.0, 11.0, "SE", "SK", "FSE"),
    MrProtocol("T2_FSE_SAG", "SAG", "T2", 3300.0, 95.0, "SE", "SK", "FSE"),
    MrProtocol("STIR_SAG", "SAG", "FS", 4800.0, 60.0, "IR", "SK", "FSE\\IR", inversion_time=180.0),
    MrProtocol("T2_FSE_AX", "TRA", "T2", 3600.0, 100.0, "SE", "SK", "FSE", fov_mm=200.0),
)

_XR_CHOICES = (
    ("DX", Equipment("GE Healthcare", "Definium 6000", "GEXR01", "DF6K8841", "DM_Platform_Release_Gemini")),
    ("CR", Equipment("FUJIFILM Corporation", "FCR CAPSULA XLII", "FCR-CAP2", "35110457", "A08")),
    ("DX", Equipment("SIEMENS", "Ysio Max", "YSIO1", "12045", "VF10F")),
    ("DX", Equipment("Carestream Health", "DRX-Evolution", "DRXEVO", "DRX0931", "5.7.412")),
)
_CT_CHOICES = (
    (Equipment("GE MEDICAL SYSTEMS", "Revolution CT", "GECT2", "RCT445566", "rev_ct.1.0"), "STANDARD"),
    (Equipment("CANON_MEC", "Aquilion ONE", "AQONE01", "2BA1872", "V10.6SP0102"), "FC08"),
    (Equipment("Philips", "Ingenuity CT", "INGCT", "300412", "4.1.2"), "B"),
    (Equipment("SIEMENS", "SOMATOM go.Top", "GOTOP1", "117733", "VA30A"), "Br40"),
)
_MR_CHOICES = (
    (Equipment("GE MEDICAL SYSTEMS", "SIGNA Pioneer", "GEMR3T", "MR3T0091", "MR29.1"), 3.0, GE_PROTOCOLS),
    (Equipment("SIEMENS", "MAGNETOM Aera", "AERA15", "141771", "syngo MR E11"), 1.5, SIEMENS_PROTOCOLS),
    (Equipment("CANON_MEC", "Vantage Titan", "TITAN15", "MRT1504", "V6.0"), 1.5, CANON_PROTOCOLS),
    (Equipment("Philips Medical Systems", "Achieva", "ACH15", "42391", "5.3.1"), 1.5, PHILIPS_PROTOCOLS),
)
_TOWNS = ("Springfield", "Riverton", "Lakeside", "Fairview", "Brookfield", "Georgetown", "Ashford")


def site01() -> SiteProfile:
    """The reference study's hospital (vcf_paper.md): its vendors, protocol, cohort size."""
    return SiteProfile(
        site_id="site01",
        number=1,
        institution="虚构市骨科医院",  # "Fictional City Orthopaedic Hospital"
        institution_address="虚构市建设路88号",
        department="放射科",
        charset="GB18030",
        name_style="zh",
        mrn_prefix="ZY",
        mrn_digits=8,
        accession_prefix="",
        xr_modality="DX",
        xr=Equipment("Kodak", "DR 7500", "KODAKDR1", "DR7500-0412", "5.2.1"),
        ct=Equipment("SIEMENS", "SOMATOM Definition AS", "CTAWP81233", "81233", "syngo CT VA48A"),
        ct_kvp=120.0,
        ct_kernel="I30f",
        ct_slice_thickness=0.6,
        ct_transfer_syntax=EXPLICIT_LE,
        mr=Equipment("Philips Medical Systems", "Ingenia", "INGENIA3T", "44817", "5.7.1"),
        mr_field_strength=3.0,
        mr_protocols=PHILIPS_PROTOCOLS,
        n_op=50,
        n_met=31,
        private_group=0x0009,
    )


def other_site(number: int, seed: int) -> SiteProfile:
    """Site ``number`` (2, 3, ...): rotated vendors, its own size and case mix, English names."""
    k = number - 2
    xr_modality, xr = _XR_CHOICES[k % len(_XR_CHOICES)]
    ct, kernel = _CT_CHOICES[k % len(_CT_CHOICES)]
    mr, field, protocols = _MR_CHOICES[k % len(_MR_CHOICES)]
    if number == 2:
        size, met_share = 60, 0.45
    elif number == 3:
        size, met_share = 45, 0.30
    else:
        rng = np.random.default_rng([seed, number, 17])
        size, met_share = int(rng.integers(40, 201)), float(rng.uniform(0.2, 0.5))
    n_met = max(3, round(size * met_share))
    town = _TOWNS[k % len(_TOWNS)]
    return SiteProfile(
        site_id=f"site{number:02d}",
        number=number,
        institution=f"{town} General Hospital",
        institution_address=f"{100 + 7 * number} Hospital Road, {town}",
        department="Radiology",
        charset="ISO_IR 192",
        name_style="en",
        mrn_prefix=("M", "", "H", "RX")[k % 4],
        mrn_digits=(8, 9, 7, 6)[k % 4],
        accession_prefix=("ACC", "", "RA", "X")[k % 4],
        xr_modality=xr_modality,
        xr=xr,
        ct=ct,
        ct_kvp=(120.0, 100.0, 120.0, 110.0)[k % 4],
        ct_kernel=kernel,
        ct_slice_thickness=(1.25, 1.0, 0.9, 1.5)[k % 4],
        # one site's CT archive still sends Implicit VR Little Endian: parsers must cope
        ct_transfer_syntax=IMPLICIT_LE if number == 3 else EXPLICIT_LE,
        mr=mr,
        mr_field_strength=field,
        mr_protocols=protocols,
        n_op=size - n_met,
        n_met=n_met,
        private_group=(0x0011, 0x0013, 0x0015, 0x0017)[k % 4],
    )


def site_profiles(sites: int, seed: int) -> list[SiteProfile]:
    """The consortium's sites, ``site01`` first."""
    if sites < 1:
        raise ValueError(f"sites must be at least 1, got {sites}")
    return [site01()] + [other_site(n, seed) for n in range(2, sites + 1)]
