"""The feature store: definitions, apply, offline retrieval, online serving."""
