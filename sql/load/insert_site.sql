INSERT INTO raw.sites (site_id, first_batch_id, first_loaded_at)
VALUES ($site_id, $batch_id, $loaded_at)
ON CONFLICT (site_id) DO NOTHING;
