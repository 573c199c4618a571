"""The content-addressed, checksummed artifact store (local folder, S3-compatible, memory)."""

from shipyard.artifacts.backend import BlobStore, open_blob_store
from shipyard.artifacts.names import check_name
from shipyard.artifacts.store import ArtifactRef, ArtifactStore, ChecksumError, open_artifact_store

__all__ = ["ArtifactRef", "ArtifactStore", "BlobStore", "ChecksumError", "check_name",
           "open_artifact_store", "open_blob_store"]
