-- agg_detection_patterns: pattern counts for the paired detection analysis (Table 3), so 10^7 reads never
-- leave DuckDB as rows. One row per site, diagnosis, finding and combination of (XR, CT, MR) detections,
-- with n_units = how many fractured vertebrae had that combination. A vertebra without a read on every
-- modality cannot be paired and is left out here (agg_detection_incomplete.sql counts them).
-- Read by cohortpool.stats as the `detection_patterns` frame (docs/data_contract.md section 4).
with reads as (
    select * from analysis.vertebra_reads
),

per_vertebra as (
    -- one pass over the reads: a vertebra is detected on a modality if any current read there says so
    select
        site_id,
        diagnosis,
        bool_or(modality = 'XR') and bool_or(modality = 'CT') and bool_or(modality = 'MR') as complete,
        bool_or(fracture_line) filter (where modality = 'XR') as fl_xr,
        bool_or(fracture_line) filter (where modality = 'CT') as fl_ct,
        bool_or(fracture_line) filter (where modality = 'MR') as fl_mr,
        bool_or(marrow_oedema) filter (where modality = 'XR') as mo_xr,
        bool_or(marrow_oedema) filter (where modality = 'CT') as mo_ct,
        bool_or(marrow_oedema) filter (where modality = 'MR') as mo_mr,
        bool_or(soft_tissue_mass) filter (where modality = 'XR') as st_xr,
        bool_or(soft_tissue_mass) filter (where modality = 'CT') as st_ct,
        bool_or(soft_tissue_mass) filter (where modality = 'MR') as st_mr,
        bool_or(bone_destruction) filter (where modality = 'XR') as bd_xr,
        bool_or(bone_destruction) filter (where modality = 'CT') as bd_ct,
        bool_or(bone_destruction) filter (where modality = 'MR') as bd_mr,
        bool_or(posterior_wall_bulging) filter (where modality = 'XR') as pw_xr,
        bool_or(posterior_wall_bulging) filter (where modality = 'CT') as pw_ct,
        bool_or(posterior_wall_bulging) filter (where modality = 'MR') as pw_mr,
        bool_or(posterior_element_involvement) filter (where modality = 'XR') as pe_xr,
        bool_or(posterior_element_involvement) filter (where modality = 'CT') as pe_ct,
        bool_or(posterior_element_involvement) filter (where modality = 'MR') as pe_mr,
        bool_or(wedge_shape) filter (where modality = 'XR') as ws_xr,
        bool_or(wedge_shape) filter (where modality = 'CT') as ws_ct,
        bool_or(wedge_shape) filter (where modality = 'MR') as ws_mr,
        bool_or(posterior_fat_signal) filter (where modality = 'XR') as pf_xr,
        bool_or(posterior_fat_signal) filter (where modality = 'CT') as pf_ct,
        bool_or(posterior_fat_signal) filter (where modality = 'MR') as pf_mr,
        bool_or(intravertebral_cleft) filter (where modality = 'XR') as ic_xr,
        bool_or(intravertebral_cleft) filter (where modality = 'CT') as ic_ct,
        bool_or(intravertebral_cleft) filter (where modality = 'MR') as ic_mr,
        bool_or(normal_disc) filter (where modality = 'XR') as nd_xr,
        bool_or(normal_disc) filter (where modality = 'CT') as nd_ct,
        bool_or(normal_disc) filter (where modality = 'MR') as nd_mr,
        bool_or(disc_compression) filter (where modality = 'XR') as dc_xr,
        bool_or(disc_compression) filter (where modality = 'CT') as dc_ct,
        bool_or(disc_compression) filter (where modality = 'MR') as dc_mr,
        bool_or(whole_body_collapse) filter (where modality = 'XR') as wb_xr,
        bool_or(whole_body_collapse) filter (where modality = 'CT') as wb_ct,
        bool_or(whole_body_collapse) filter (where modality = 'MR') as wb_mr
    from reads
    group by site_id, patient_id, diagnosis, level
),

long as (
    -- 12 findings x 3 modalities -> one row per vertebra and finding with its (XR, CT, MR) pattern
    unpivot (select * exclude (complete) from per_vertebra where complete)
    on (fl_xr, fl_ct, fl_mr) as fracture_line,
        (mo_xr, mo_ct, mo_mr) as marrow_oedema,
        (st_xr, st_ct, st_mr) as soft_tissue_mass,
        (bd_xr, bd_ct, bd_mr) as bone_destruction,
        (pw_xr, pw_ct, pw_mr) as posterior_wall_bulging,
        (pe_xr, pe_ct, pe_mr) as posterior_element_involvement,
        (ws_xr, ws_ct, ws_mr) as wedge_shape,
        (pf_xr, pf_ct, pf_mr) as posterior_fat_signal,
        (ic_xr, ic_ct, ic_mr) as intravertebral_cleft,
        (nd_xr, nd_ct, nd_mr) as normal_disc,
        (dc_xr, dc_ct, dc_mr) as disc_compression,
        (wb_xr, wb_ct, wb_mr) as whole_body_collapse
    into name finding value "XR", "CT", "MR"
),

final as (
    select site_id, diagnosis, finding, "XR", "CT", "MR", count(*) as n_units
    from long
    group by all
)

select * from final
order by site_id, diagnosis, finding, "XR", "CT", "MR"
