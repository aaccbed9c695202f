"""Temporal's remote codec endpoint: the Temporal Web UI shows decoded payloads to cleared readers.

Every payload Temporal holds is encrypted (`danvan.codec`); the Web UI, given `--ui-codec-endpoint`, posts
the payloads it is about to show to `<endpoint>/decode` (and what a user types as input to `<endpoint>/encode`)
in Temporal's JSON form, `{"payloads": [{"metadata": {...}, "data": ...}]}` with base64 bytes, and shows
what comes back. Only `supervisor`, `operator` and `admin` are answered: by bearer token (the UI's "pass
access token"), or by the console's signed-in session when the UI includes cross-origin credentials.

The console's session cookie is scoped to `/console`, so the same endpoint is also served as
`/console/codec/...`, where the browser sends that cookie; `CodecGate` routes both here and puts CORS, for the
Web UI's origin only, on these paths and no other.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from danvan.codec import EncryptionCodec, PayloadKeyUnknown

from ..auth import bearer, principal_of
from ..console.session import session_principal
from ..errors import ApiError, error_responses
from ..routing import ApiRoute
from ..tokens import Principal, Role

router = APIRouter(prefix="/codec", tags=["codec"], route_class=ApiRoute)

#: Who may see decoded payloads: those who already read every case in full.
CODEC_ROLES: tuple[Role, ...] = ("supervisor", "operator", "admin")
#: The paths the gate answers; the second is where the console's session cookie reaches.
PATHS = ("/codec/", "/console/codec/")


async def codec_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, by bearer token or else by the console's session; 401 for neither, 403 for another role."""
    principal = (await principal_of(request, credentials) if credentials is not None or
                 request.headers.get("Authorization") else await session_principal(request))
    if principal is None:
        raise ApiError(401, "unauthorized", "the codec endpoint needs a token (`Authorization: Bearer <token>`) "
                       "or a console session", headers={"WWW-Authenticate": "Bearer"})
    if principal.role not in CODEC_ROLES:
        raise ApiError(403, "forbidden", f"a {principal.role!r} token may not decode payloads; allowed roles: "
                       f"{', '.join(CODEC_ROLES)}")
    return principal


#: Bytes as protobuf's JSON writes them: standard base64, padded.
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
Base64 = Annotated[str, Field(pattern=BASE64, description="bytes, in base64")]


class PayloadIn(BaseModel):
    """One Temporal payload in Temporal's JSON form."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Base64] = Field(default_factory=dict, description="`encoding` and the codec's keys")
    data: Base64 = ""


class PayloadsIn(BaseModel):
    """`{"payloads": [...]}`, as the Web UI posts them."""

    model_config = ConfigDict(extra="forbid")

    payloads: list[PayloadIn] = Field(default_factory=list)


def _payloads(body: PayloadsIn) -> Payloads:
    try:
        return json_format.ParseDict(body.model_dump(), Payloads())
    except json_format.ParseError as exc:
        raise ApiError(422, "validation_failed", f"not Temporal payloads: {exc}") from None


def _answer(payloads: list[Any]) -> JSONResponse:
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=payloads)), headers={"Cache-Control": "no-store"})


#: A JSON payload, `"Lan"` (`json/plain`): not encrypted, so both endpoints answer it.
Example = Body(examples=[{"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkxhbiI="}]}])


@router.post("/decode", summary="Decode Temporal payloads (the Web UI's remote codec)",
             responses=error_responses(401, 403, 422))
async def decode(request: Request, body: Annotated[PayloadsIn, Example],
                 principal: Annotated[Principal, Depends(codec_reader)]) -> JSONResponse:
    """The payloads decrypted; those not encrypted come back as they are. Roles: `supervisor`, `operator`,
    `admin`."""
    codec: EncryptionCodec = request.app.state.codec
    try:
        return _answer(await codec.decode(list(_payloads(body).payloads)))
    except PayloadKeyUnknown as exc:
        raise ApiError(422, "codec.key", str(exc)) from None


@router.post("/encode", summary="Encode Temporal payloads (the Web UI's remote codec)",
             responses=error_responses(401, 403, 422))
async def encode(request: Request, body: Annotated[PayloadsIn, Example],
                 principal: Annotated[Principal, Depends(codec_reader)]) -> JSONResponse:
    """The payloads encrypted under the current key. Roles: `supervisor`, `operator`, `admin`."""
    codec: EncryptionCodec = request.app.state.codec
    return _answer(await codec.encode(list(_payloads(body).payloads)))


def ui_origins(ui_url: str) -> list[str]:
    """The origins the Web UI is served from: that of `ui_url`, and its other loopback spelling."""
    parts = urlsplit(ui_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    loopback = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    other = loopback.get(parts.hostname or "")
    if other is None:
        return [origin]
    return [origin, f"{parts.scheme}://{other}" + (f":{parts.port}" if parts.port else "")]


class CodecGate:
    """In front of the API app: `/codec/...` and `/console/codec/...` go to `router` with CORS for the Web
    UI's origins (credentials allowed); every other path passes untouched, with no CORS at all, so no page of
    another origin can read the API or the console."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=origins, allow_credentials=True,
                                   allow_methods=["POST"], allow_headers=["Authorization", "Content-Type",
                                                                          "X-Namespace"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(PATHS[1]):
            path = path.removeprefix("/console")
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if path.startswith(PATHS[0]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
