"""The blob store's contract, against a real PostgreSQL: written over the `blobs` fixture, so another
implementation of `BlobStore` (an S3-compatible one) is held to the same rules by parametrising it."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import pytest

from eventstore import EventStore
from eventstore.blobs import BlobNotFound, BlobStore, PostgresBlobStore


@pytest.fixture
def blobs(store: EventStore) -> BlobStore:
    return PostgresBlobStore(store.pool, chunk_size=1000)  # small chunks: every path of the chunking is taken


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 4500])
async def test_bytes_come_back_as_they_were_stored_under_their_sha256(blobs: BlobStore, size: int) -> None:
    data = secrets.token_bytes(size)
    put = await blobs.put_stream(pieces(data, 333))
    assert put.hash == hashlib.sha256(data).hexdigest() and put.size == size and put.created
    assert await blobs.get(put.hash) == data
    assert b"".join([c async for c in blobs.open(put.hash)]) == data
    assert await blobs.exists(put.hash) and await blobs.size(put.hash) == size
    assert (await blobs.verify(put.hash)).status == "ok"


async def test_the_same_bytes_are_kept_once(blobs: BlobStore, store: EventStore) -> None:
    data = secrets.token_bytes(2500)
    first, again = await asyncio.gather(blobs.put(data), blobs.put(data))
    assert first.hash == again.hash and sorted([first.created, again.created]) == [False, True]
    assert await store.pool.fetchval("SELECT count(*) FROM blobs WHERE hash = $1", first.hash) == 1
    blob_id = await store.pool.fetchval("SELECT blob_id FROM blobs WHERE hash = $1", first.hash)
    assert await store.pool.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", blob_id) == 3
    # The loser's chunks went with its transaction: no chunk belongs to no blob.
    assert await store.pool.fetchval(
        "SELECT count(*) FROM blob_chunks c WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.blob_id = c.blob_id)") == 0


async def test_a_failed_upload_leaves_nothing(blobs: BlobStore, store: EventStore) -> None:
    before = await store.pool.fetchval("SELECT count(*) FROM blob_chunks")

    async def broken() -> AsyncIterator[bytes]:
        yield secrets.token_bytes(2500)
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put_stream(broken())
    assert await store.pool.fetchval("SELECT count(*) FROM blob_chunks") == before


async def test_unknown_and_malformed_hashes_are_not_found(blobs: BlobStore) -> None:
    for name in ("0" * 64, "not-a-hash", "'; DROP TABLE blobs; --"):
        assert not await blobs.exists(name)
        with pytest.raises(BlobNotFound):
            await blobs.get(name)
        assert (await blobs.verify(name)).status == "missing"


async def test_verify_finds_bytes_changed_behind_the_stores_back(blobs: BlobStore, store: EventStore) -> None:
    data = secrets.token_bytes(3000)
    put = await blobs.put(data)
    blob_id = await store.pool.fetchval("SELECT blob_id FROM blobs WHERE hash = $1", put.hash)
    await store.pool.execute(
        "UPDATE blob_chunks SET data = set_byte(data, 10, (get_byte(data, 10) + 1) % 256) "
        "WHERE blob_id = $1 AND seq = 1", blob_id)
    check = await blobs.verify(put.hash)
    assert check.status == "altered" and check.actual != put.hash
    await store.pool.execute("DELETE FROM blob_chunks WHERE blob_id = $1 AND seq = 2", blob_id)
    assert (await blobs.verify(put.hash)).status == "altered"
