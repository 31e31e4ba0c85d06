-- What the batch's withdrawals did: the patients its withdrawn.csv listed and the rows its load erased.
UPDATE raw.batches
SET withdrawn_patients = $withdrawn_patients,
    erased_rows = $erased_rows
WHERE batch_id = $batch_id;
