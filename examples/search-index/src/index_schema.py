"""The search index's layout, shared by the indexer (which writes it) and the search (which reads it).

``documents`` holds one row per indexed object: its key, ETag, size, the S3 event's ``sequencer``,
and when it was filed (the object's ``x-amz-meta-filed`` user metadata, if it has one);
``passages`` is the FTS5 table, whose rowid is the document's id. The index travels as one object,
``index.db``, in the index bucket.
"""

INDEX_KEY = "index.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    etag TEXT NOT NULL,
    sequencer TEXT NOT NULL,
    size INTEGER NOT NULL,
    filed TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(title, body, tokenize = 'porter unicode61');
"""
