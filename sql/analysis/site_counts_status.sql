SELECT * FROM analysis.site_counts ORDER BY site_id, diagnosis;
