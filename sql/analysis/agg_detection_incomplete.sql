-- agg_detection_incomplete: fractured vertebrae that lack a read on at least one of XR, CT, MR, per site and
-- diagnosis. They are left out of the paired analysis (agg_detection_patterns.sql); the report says how many.
with per_vertebra as (
    select
        site_id,
        diagnosis,
        patient_id,
        level,
        count(distinct modality) filter (where modality in ('XR', 'CT', 'MR')) as modalities
    from analysis.vertebra_reads
    group by site_id, diagnosis, patient_id, level
),

final as (
    select site_id, diagnosis, count(*) as n_incomplete
    from per_vertebra
    where modalities < 3
    group by all
)

select * from final
order by site_id, diagnosis
