"""Result storage (DuckDB). Knows nothing about models, probes or Streamlit."""

from cache.keys import RunKey, digest_bytes, digest_json
from cache.store import Payload, ResultStore, StoredRun, StoreError, payload_from

__all__ = ["Payload", "ResultStore", "RunKey", "StoreError", "StoredRun", "digest_bytes", "digest_json", "payload_from"]
