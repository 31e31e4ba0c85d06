-- Synthetic analysis views for benchmarks/bench_stats.py: $patients patients, about 3.33 vertebrae each,
-- every vertebra read on XR, CT and MR (so 10^6 patients give 10^7 reads). Deterministic: every "random"
-- draw is a hash of the row number and a salt, never random(). Tables carry the names and columns of the
-- analysis views (docs/data_contract.md section 4) so the sql/analysis files run on them unchanged.
create schema if not exists analysis;

create or replace macro u(i, salt) as ((hash(i, salt) % 1000000)::double + 0.5) / 1000000.0;
create or replace macro z(i, salt) as sqrt(-2 * ln(u(i, salt || 'a'))) * cos(2 * pi() * u(i, salt || 'b'));

create or replace table analysis.patients as
with base as (
    select
        i,
        'site' || lpad(((hash(i, 'site') % 10) + 1)::varchar, 2, '0') as site_id,
        'P' || lpad(upper(to_hex(i)), 16, '0') as patient_id,
        case when u(i, 'dx') < 0.4 then 'MET' else 'OP' end as diagnosis
    from range($patients) t(i)
)
select
    site_id,
    patient_id,
    diagnosis,
    round(case when diagnosis = 'OP' then 69.6 + 8.5 * z(i, 'age') else 62.1 + 10.8 * z(i, 'age') end)::integer
        as age_years,
    case when u(i, 'sex') < (case when diagnosis = 'OP' then 0.12 else 0.71 end) then 'M' else 'F' end as sex,
    round(case when diagnosis = 'OP' then 23.38 + 3.31 * z(i, 'bmi') else 22.87 + 2.67 * z(i, 'bmi') end, 2)
        as bmi,
    round(160 + 8 * z(i, 'h'), 1) as height_cm,
    round(60 + 9 * z(i, 'w'), 1) as weight_kg,
    round(case when diagnosis = 'OP' then -3.2 + 0.5 * z(i, 't') else -1.4 + 1.1 * z(i, 't') end, 1)
        as dxa_t_score,
    (case when diagnosis = 'OP' then -3.2 + 0.5 * z(i, 't') else -1.4 + 1.1 * z(i, 't') end) <= -2.5
        as osteoporosis,
    true as pathology_confirmed,
    case when diagnosis = 'MET' then 'lung' else null end as primary_tumour,
    case when i < ($patients * 10) // 3 - 3 * $patients then 4 else 3 end as n_vertebrae,
    site_id || '_bench' as batch_id
from base;

create or replace table analysis.vertebra_reads as
with vertebrae as (
    select
        v,
        v % $patients as i,
        ['T11', 'T12', 'L1', 'L2'][(v // $patients) + 1] as level
    from range(($patients * 10) // 3) t(v)
),
joined as (
    select v.v, v.level, p.site_id, p.patient_id, p.diagnosis, (p.diagnosis = 'MET')::integer as met
    from vertebrae v join analysis.patients p on p.patient_id = 'P' || lpad(upper(to_hex(v.i)), 16, '0')
),
reads as (
    select j.*, m.modality, m.sens, (j.v * 3 + m.k) as r
    from joined j cross join (values ('XR', 0.55, 0), ('CT', 0.85, 1), ('MR', 0.95, 2)) m(modality, sens, k)
)
select
    site_id, patient_id, diagnosis, level, modality,
    u(v, 'fl' || modality) < sens * (0.45 - 0.10 * met) as fracture_line,
    u(v, 'mo' || modality) < sens * (0.35 + 0.30 * met) * (case when modality = 'XR' then 0.05 else 1 end)
        as marrow_oedema,
    u(v, 'st' || modality) < sens * (0.02 + 0.40 * met) as soft_tissue_mass,
    u(v, 'bd' || modality) < sens * (0.03 + 0.60 * met) as bone_destruction,
    u(v, 'pw' || modality) < sens * (0.15 + 0.45 * met) as posterior_wall_bulging,
    u(v, 'pe' || modality) < sens * (0.05 + 0.50 * met) as posterior_element_involvement,
    u(v, 'ws' || modality) < sens * (0.60 - 0.35 * met) as wedge_shape,
    u(v, 'pf' || modality) < sens * (0.55 - 0.40 * met) as posterior_fat_signal,
    u(v, 'ic' || modality) < sens * (0.25 - 0.20 * met) as intravertebral_cleft,
    u(v, 'nd' || modality) < sens * (0.30 + 0.40 * met) as normal_disc,
    u(v, 'dc' || modality) < sens * (0.50 - 0.30 * met) as disc_compression,
    u(v, 'wb' || modality) < sens * (0.10 + 0.30 * met) as whole_body_collapse,
    least(3, (u(v, 'g') * 4)::integer) as genant_grade,
    round(10 + 50 * u(v, 'hl'), 1) as height_loss_pct,
    site_id || '_bench' as batch_id
from reads;

create or replace table analysis.vertebrae as
select
    site_id, patient_id, diagnosis, level,
    bool_or(fracture_line) as fracture_line, bool_or(marrow_oedema) as marrow_oedema,
    bool_or(soft_tissue_mass) as soft_tissue_mass, bool_or(bone_destruction) as bone_destruction,
    bool_or(posterior_wall_bulging) as posterior_wall_bulging,
    bool_or(posterior_element_involvement) as posterior_element_involvement,
    bool_or(wedge_shape) as wedge_shape, bool_or(posterior_fat_signal) as posterior_fat_signal,
    bool_or(intravertebral_cleft) as intravertebral_cleft, bool_or(normal_disc) as normal_disc,
    bool_or(disc_compression) as disc_compression, bool_or(whole_body_collapse) as whole_body_collapse,
    max(genant_grade) as genant_grade, max(height_loss_pct) as height_loss_pct
from analysis.vertebra_reads
group by site_id, patient_id, diagnosis, level;
