-- What the site released under (submission.json "privacy"), recorded per batch so the report can say
-- it beside the data: the k-anonymity of the released quasi-identifiers and the generalisations the
-- consortium chose (age bands, top code, exam-date precision, rare categories merged). NULL when the
-- load was not given the submission or the submission did not say.
ALTER TABLE raw.batches ADD COLUMN release_k_anonymity INTEGER;
ALTER TABLE raw.batches ADD COLUMN release_generalisations VARCHAR;
