INSERT INTO raw.batch_files (batch_id, file, sha256, bytes)
VALUES ($batch_id, $file, $sha256, $bytes);
