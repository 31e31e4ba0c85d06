"""Defined terms of the standard that de-identification checks kept values against.

A code string attribute that must hold one of these holds text someone typed when it holds anything
else (``CT JOAN`` has a code string's form): :mod:`cohortpool.deid.decide` removes it from the output,
and the imaging manifest, which takes only what the de-identified file keeps, leaves it empty.
"""

from __future__ import annotations

from pydicom.charset import python_encoding

#: Modality (0008,0060) defined terms, PS3.3 C.7.3.1.1.1 (2024b), with the retired ones
MODALITIES = frozenset({
    "ANN", "AR", "ASMT", "AU", "BDUS", "BI", "BMD", "CFM", "CR", "CT", "CTPROTOCOL", "DMS", "DG", "DOC",
    "DX", "ECG", "EEG", "EMG", "EOG", "EPS", "ES", "FID", "GM", "HC", "HD", "IO", "IOL", "IVOCT", "IVUS",
    "KER", "KO", "LEN", "LS", "MG", "MR", "M3D", "NM", "OAM", "OCT", "OP", "OPM", "OPT", "OPTBSV",
    "OPTENF", "OPV", "OSS", "OT", "PA", "PLAN", "POS", "PR", "PT", "PX", "REG", "RESP", "RF", "RG",
    "RTDOSE", "RTIMAGE", "RTINTENT", "RTPLAN", "RTRAD", "RTRECORD", "RTSEGANN", "RTSTRUCT", "RWV",
    "SEG", "SM", "SMR", "SR", "SRF", "STAIN", "TEXTUREMAP", "TG", "US", "VA", "XA", "XAPROTOCOL", "XC",
    # retired
    "AS", "CD", "CF", "CP", "CS", "DD", "DF", "DM", "DS", "EC", "FA", "FS", "LP", "MA", "MS", "OPR",
    "ST", "VF",
})  # fmt: skip

#: Specific Character Set (0008,0005) defined terms (PS3.3 C.12.1.1.2), as pydicom reads them; an empty
#: value stands for the default repertoire (the first value of an ISO 2022 list may be empty)
CHARACTER_SETS = frozenset(python_encoding)
