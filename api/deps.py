"""What routes take from the running app (set up by `api.app`'s lifespan on `app.state`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from danvan.settings import Settings
from eventstore import EventStore
from integrity.lookup import SignedHeads

from .temporal import TemporalConnection

# Dependencies are `async def` although they wait for nothing: FastAPI runs a plain `def` dependency in a thread
# pool, a hand-off to another thread on every request for what is a dictionary lookup.


async def get_store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


async def get_temporal(request: Request) -> TemporalConnection:
    temporal: TemporalConnection = request.app.state.temporal
    return temporal


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_signed_heads(request: Request) -> SignedHeads | None:
    heads: SignedHeads | None = getattr(request.app.state, "signed_heads", None)
    return heads


Store = Annotated[EventStore, Depends(get_store)]
#: The latest signed checkpoint's heads (`integrity.lookup`), which a case's history integrity is held to.
Heads = Annotated[SignedHeads | None, Depends(get_signed_heads)]
Temporal = Annotated[TemporalConnection, Depends(get_temporal)]
AppSettings = Annotated[Settings, Depends(get_settings)]
