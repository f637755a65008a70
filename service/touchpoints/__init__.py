"""Touchpoint events: the vocabulary, schemas, the one ingest path, sinks, Segment compatibility."""
