"""The data contract's shared vocabulary (docs/data_contract.md), for every stage to import.

Like :mod:`cohortpool.config` this package imports nothing else of cohortpool, so stage packages can share the column
names of a site drop without importing each other.
"""

from __future__ import annotations

import errno

#: the paper's Table 2 and 3 findings, one yes/no column each in reads.csv, in contract order
FINDINGS: tuple[str, ...] = (
    "fracture_line",
    "marrow_oedema",
    "soft_tissue_mass",
    "bone_destruction",
    "posterior_wall_bulging",
    "posterior_element_involvement",
    "wedge_shape",
    "posterior_fat_signal",
    "intravertebral_cleft",
    "normal_disc",
    "disc_compression",
    "whole_body_collapse",
)
#: modalities of a read: XR is a plain radiograph (DICOM DX or CR)
READ_MODALITIES: tuple[str, ...] = ("XR", "CT", "MR")

#: write errors of the machine (disk full, quota, failing or read-only disk), never of the input: a
#: stage that meets one fails the run and quarantines nothing
MACHINE_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
