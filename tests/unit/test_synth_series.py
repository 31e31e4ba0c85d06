"""Series plans: small for the demo, realistic sizes with --full-size."""

from __future__ import annotations

import datetime as dt
import io
from itertools import islice

import numpy as np
from pydicom import dcmread

from cohortpool.synth.cohort import build_cohort
from cohortpool.synth.dicom_builder import patient_instances
from cohortpool.synth.series import FULL, SMALL, safe_name, series_plans
from cohortpool.synth.vendors import site01, site_profiles


def test_full_size_plans_have_realistic_matrices_and_lengths() -> None:
    rng = np.random.default_rng(0)
    for profile in site_profiles(4, 7):
        xr = series_plans(profile, "XR", FULL, rng)
        assert [p.view for p in xr] == ["AP", "LL"]
        assert all(p.rows == 2048 and p.cols >= 1600 for p in xr)
        (ct,) = series_plans(profile, "CT", FULL, rng)
        assert (ct.rows, ct.cols) == (512, 512)
        assert 60 <= ct.count <= 120
        mr = series_plans(profile, "MR", FULL, rng)
        assert [p.protocol.plane for p in mr if p.protocol] == ["SAG", "SAG", "SAG", "TRA"]
        assert all(15 <= p.count <= 20 and max(p.rows, p.cols) >= 420 for p in mr)


def test_small_plans_keep_the_demo_quick() -> None:
    rng = np.random.default_rng(0)
    counts = [sum(p.count for p in series_plans(site01(), m, SMALL, rng)) for m in ("XR", "CT", "MR")]
    assert counts == [2, 4, 12]


def test_full_size_ct_instance_is_512_square_with_matching_pixel_data() -> None:
    cohort = build_cohort(site01(), 7, dt.date(2025, 3, 1))
    files = list(islice(patient_instances(cohort, cohort.patients[0], 7, FULL), 3))  # AP, LAT, first CT
    ds = dcmread(io.BytesIO(files[2][2]))
    assert ds.Modality == "CT"
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert len(ds.PixelData) == 512 * 512 * 2
    assert float(ds.SliceThickness) == 0.6  # the paper's thin reconstructions
    xr = dcmread(io.BytesIO(files[0][2]))
    assert (xr.Rows, xr.Columns) == (2048, 2048)


def test_safe_name_keeps_folder_names_portable() -> None:
    assert safe_name("Spine 0.6mm") == "Spine_0_6mm"
    assert safe_name("t2_tse_sag") == "t2_tse_sag"
    assert safe_name("***") == "SERIES"
