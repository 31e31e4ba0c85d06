-- summary.json as cohortpool validate writes it: a table's "rejected" is the reason the whole table
-- was refused (null when it could be read), not a count; each table also names its submission file and
-- checksum, and the batch carries the submission's content checksum and validation's own status.
ALTER TABLE raw.validation_summary DROP COLUMN rejected;
ALTER TABLE raw.validation_summary ADD COLUMN rejected_reason VARCHAR;
ALTER TABLE raw.validation_summary ADD COLUMN source_file VARCHAR;
ALTER TABLE raw.validation_summary ADD COLUMN source_sha256 VARCHAR;
ALTER TABLE raw.batches ADD COLUMN submission_sha256 VARCHAR;
ALTER TABLE raw.batches ADD COLUMN validation_status VARCHAR;
