"""Issuing API tokens (admin only)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from ..auth import require
from ..deps import Store
from ..errors import error_responses
from ..routing import ApiRoute
from ..tokens import Principal, TokenIssued, TokenRequest, hash_token, issue_token, token_id

log = logging.getLogger("danvan.api")

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], route_class=ApiRoute)


@router.post(
    "",
    status_code=201,
    response_model=TokenIssued,
    summary="Issue a token",
    responses=error_responses(401, 403, 422),
)
async def create_token(
    request: TokenRequest,
    store: Store,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> TokenIssued:
    """Make a token for `role` (`body_id` is required for role `body` and refused for the others). The
    token is in this answer only: it is stored hashed. For an `intake` token, `label` is the name of the
    sending system, the `source` of the petitions it sends. Role: `admin`.
    """
    token = await issue_token(store.pool, request.role, request.body_id, request.label)
    issued = token_id(hash_token(token))
    log.info("token %s issued by %s: role %s body %s", issued, principal.id, request.role, request.body_id)
    return TokenIssued(token=token, id=issued, role=request.role, body_id=request.body_id, label=request.label)
