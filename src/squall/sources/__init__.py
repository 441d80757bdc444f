"""Event sources: event source mappings that poll a source and invoke a function with batches."""
