"""The files of the cases against what their events record: each `AttachmentAdded` names the SHA-256 of the blob
that holds its bytes (the ciphertext's, `stored`, for a file kept encrypted), and the blob must still hash to it.

The event is covered by its stream's hash chain and the signed checkpoints, so a file's recorded hash cannot be
changed unseen; this check closes the other side: bytes changed, cut short or removed in `blob_chunks` behind the
store's back. Reading a blob back needs no key: what is checked is what is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from eventstore import BrokenStream, EventStore
from eventstore.blobs import BlobStore, PostgresBlobStore

_FILES = ("SELECT stream_id, version, data FROM events WHERE type = 'AttachmentAdded' "
          "AND ($1::text IS NULL OR stream_id = $1) ORDER BY stream_id, version")


@dataclass
class FilesChecked:
    """How many files were read back, and the streams whose files do not match their events."""

    checked: int = 0
    broken: list[BrokenStream] = field(default_factory=list)


async def check_files(store: EventStore, case_id: str | None = None, blobs: BlobStore | None = None) -> FilesChecked:
    """Read back every file of `case_id` (or of every case) and hash it; one `BrokenStream` (kind `file`) per
    stream, at the version of its first file that does not match."""
    blobs = blobs or PostgresBlobStore(store.pool)
    out = FilesChecked()
    bad: dict[str, BrokenStream] = {}
    for row in await store.pool.fetch(_FILES, case_id):
        data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
        name = str(data.get("stored") or data.get("sha256"))
        check = await blobs.verify(name)
        out.checked += 1
        if check.status == "ok" or row["stream_id"] in bad:
            continue
        what = ("its bytes are gone" if check.status == "missing"
                else f"its bytes hash to {check.actual} ({check.size} bytes), not to the recorded {name}")
        bad[row["stream_id"]] = BrokenStream(
            stream_id=row["stream_id"], first_bad_version=row["version"], kind="file",
            problem=f"file {data.get('name')!r} (sha256 {data.get('sha256')}) recorded at version {row['version']}: "
                    f"{what}")
    out.broken = list(bad.values())
    return out
