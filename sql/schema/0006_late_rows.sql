-- A site-night that arrives after a newer night of the same site (a delayed resend) is loaded for the
-- record but its rows for patients the newer night already carries are never current: late_rows counts
-- them, so a data engineer sees that the batch changed less than its row counts suggest.
ALTER TABLE raw.batches ADD COLUMN late_rows INTEGER DEFAULT 0;
