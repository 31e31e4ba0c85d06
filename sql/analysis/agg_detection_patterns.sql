-- agg_detection_patterns: pattern counts for the paired detection analysis (Table 3), so 10^7 reads never
-- leave DuckDB as rows. One row per site, diagnosis, finding and combination of (XR, CT, MR) detections,
-- with n_units = how many fractured vertebrae had that combination. A vertebra without a read on every
-- modality cannot be paired and is left out here (n_incomplete in agg_detection_incomplete.sql counts them).
-- Read by cohortpool.stats as the `detection_patterns` frame (docs/data_contract.md section 4).
with reads as (
    select * from analysis.vertebra_reads
),

long as (
    unpivot reads
    on fracture_line, marrow_oedema, soft_tissue_mass, bone_destruction, posterior_wall_bulging,
        posterior_element_involvement, wedge_shape, posterior_fat_signal, intravertebral_cleft,
        normal_disc, disc_compression, whole_body_collapse
    into name finding value present
),

per_vertebra as (
    -- a vertebra counts as detected on a modality if any current read on that modality says so
    select
        site_id,
        diagnosis,
        finding,
        patient_id,
        level,
        bool_or(present) filter (where modality = 'XR') as "XR",
        bool_or(present) filter (where modality = 'CT') as "CT",
        bool_or(present) filter (where modality = 'MR') as "MR"
    from long
    group by site_id, diagnosis, finding, patient_id, level
),

final as (
    select site_id, diagnosis, finding, "XR", "CT", "MR", count(*) as n_units
    from per_vertebra
    where "XR" is not null and "CT" is not null and "MR" is not null
    group by all
)

select * from final
order by site_id, diagnosis, finding, "XR", "CT", "MR"
