"""The bucket service: S3's REST API over object bodies in files and metadata in SQLite."""
