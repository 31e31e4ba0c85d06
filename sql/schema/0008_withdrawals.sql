-- A re-delivered night replaces the night whole (load/supersede_rows.sql) and gives back the
-- earlier-night rows its previous delivery had replaced for patients it no longer carries
-- (load/reinstate_rows.sql): reinstated_rows counts those copies.
ALTER TABLE raw.batches ADD COLUMN reinstated_rows INTEGER DEFAULT 0;

-- Withdrawal of consent (docs/data_contract.md sections 2-4). A site lists the patients who revoked
-- consent in its submission's withdrawn.csv; the load records each here and erases every row the
-- warehouse holds of that patient at that site, current and history alike (raw.clinical, raw.reads,
-- raw.imaging_manifest, and the quarantine and warning lines about them). What remains is this row:
-- the pseudonym, the site, the night and the fact. A later batch that still carries the patient (an
-- older night arriving late, a cumulative export) loads nothing of theirs: withdrawal is final.
CREATE TABLE raw.withdrawals (
    site_id         VARCHAR NOT NULL,
    patient_id      VARCHAR NOT NULL,
    night           DATE NOT NULL,      -- the earliest night whose submission listed the patient
    batch_id        VARCHAR NOT NULL,   -- that night's batch
    PRIMARY KEY (site_id, patient_id)
);

-- Per batch: the withdrawals its submission listed, and the rows its load erased for them (rows of
-- earlier loads, its own rows of withdrawn patients, quarantine and warning lines). Counts only.
ALTER TABLE raw.batches ADD COLUMN withdrawn_patients INTEGER DEFAULT 0;
ALTER TABLE raw.batches ADD COLUMN erased_rows INTEGER DEFAULT 0;

-- Per batch and table: rows validation accepted that the warehouse no longer holds because their
-- patient withdrew (erased at this batch's load or a later one), so accepted = rows held + this.
ALTER TABLE raw.validation_summary ADD COLUMN withdrawn_rows INTEGER DEFAULT 0;
