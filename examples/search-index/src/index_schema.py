"""The search index's layout, shared by the indexer (which writes it) and the search (which reads it).

``documents`` holds one row per object key the indexer has seen: its ETag, size, when it was filed
(the object's ``x-amz-meta-filed`` user metadata, if any) and the ``sequencer`` of the latest S3
event applied to it. A removed object keeps its row, marked ``removed``, so that an older event
of the key arriving late cannot bring it back. ``passages`` is the FTS5 table, whose rowid is the
document's id. The index travels as one object, ``index.db``, in the index bucket.
"""

INDEX_KEY = "index.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    sequencer TEXT NOT NULL,
    removed INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    filed TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(title, body, tokenize = 'porter unicode61');
"""
