-- The data-quality summary of each site's last night: one row per batch of that night and table, with
-- validation's counts (summary.json as loaded; rejected_reason says why a whole table was refused, null
-- when it was read), the site's de-identification counts (submission.json; null when the load was not
-- given the submission) and what it was released under (k-anonymity, generalisations). Several batches in one night (a corrected resubmission) all show. No load timestamps: the
-- report prints nothing that changes when the same data is loaded again.
with
    batches as (
        select
            batch_id, site_id, night, validation_outcome,
            deid_input_files, deid_deidentified, deid_quarantined, deid_duplicates,
            release_k_anonymity, release_generalisations
        from raw.batches
    ),

    last_night as (
        -- the latest night each site has sent
        select site_id, max(night) as night
        from batches
        group by site_id
    ),

    final as (
        select
            b.site_id,
            b.night,
            b.batch_id,
            b.validation_outcome,
            v.table_name,
            v.rows_in,
            v.accepted,
            v.quarantined,
            v.warnings,
            v.rejected_reason,
            b.deid_input_files,
            b.deid_deidentified,
            b.deid_quarantined,
            b.deid_duplicates,
            b.release_k_anonymity,
            b.release_generalisations
        from batches as b
        inner join last_night as l on l.site_id = b.site_id and l.night = b.night
        inner join raw.validation_summary as v on v.batch_id = b.batch_id
    )

select * from final
order by site_id, night, batch_id, table_name;
