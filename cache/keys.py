"""Content-addressed run keys: sha256 of canonical JSON over everything that determines a result."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata

KEYED_LIBRARIES = ("torch", "transformers", "transformer-lens")


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: package metadata lookups cost ~20 ms, and every run key needs them."""
    versions = []
    for name in KEYED_LIBRARIES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, "absent"))
    return tuple(versions)


def library_versions() -> dict[str, str]:
    return dict(_installed_versions())


def major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def digest_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def digest_json(value: object) -> str:
    """sha256 of canonical JSON: the same data in another key order gives the same digest."""
    return digest_bytes(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode())


@dataclass(frozen=True)
class RunKey:
    probe: str
    probe_version: str
    model_id: str
    revision: str | None = None
    model_digest: str | None = None  # content hash of a local model folder
    config: dict = field(default_factory=dict)  # dataclasses.asdict(cfg)
    input_digest: str | None = None  # digest of user-provided inputs (uploads, prompt sets)

    @classmethod
    def build(
        cls,
        probe: str,
        probe_version: str,
        model_identity: dict,
        config: object,
        input_digest: str | None = None,
    ) -> RunKey:
        """Key from a model identity dict (model_id, revision, content_digest) and a config dataclass or dict."""
        config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        return cls(
            probe=probe,
            probe_version=str(probe_version),
            model_id=model_identity["model_id"],
            revision=model_identity.get("revision"),
            model_digest=model_identity.get("content_digest"),
            config=json.loads(json.dumps(config_dict, default=str)),
            input_digest=input_digest,
        )

    def canonical(self) -> dict:
        return {
            "probe": self.probe,
            "probe_version": self.probe_version,
            "model_id": self.model_id,
            "revision": self.revision,
            "model_digest": self.model_digest,
            "config": self.config,
            "input_digest": self.input_digest,
            "libraries": {name: major_minor(v) for name, v in library_versions().items()},
        }

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)

    def run_id(self) -> str:
        return digest_bytes(self.canonical_json().encode())
