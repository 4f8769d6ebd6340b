"""A sweep job's folder name: its overrides, as Hydra writes them, kept within what a file system
allows in one name (255 bytes on ext4, xfs, NFS), so a search's long float values never stop a
job. Shorter names, every grid's so far, stay exactly as they were: a study continues in them."""

from __future__ import annotations

import hashlib

MAX_NAME_BYTES = 200  # below 255: room for the suffixes other tools add (.tmp, .lock)
DIGEST_CHARS = 12


def job_folder_name(overrides: str) -> str:
    """`overrides` itself, or, when longer than MAX_NAME_BYTES, its start and a digest of the
    whole: two jobs differing only at the end still get two folders."""
    encoded = overrides.encode()
    if len(encoded) <= MAX_NAME_BYTES:
        return overrides
    digest = hashlib.sha256(encoded).hexdigest()[:DIGEST_CHARS]
    head = encoded[: MAX_NAME_BYTES - DIGEST_CHARS - 1].decode(errors="ignore")
    return f"{head}~{digest}"
