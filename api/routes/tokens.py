"""Issuing API tokens (admin only)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from activities.rules import load_bodies
from domain.bodies import UnknownBody
from domain.calendar import VN_TZ

from ..auth import require
from ..deps import Store
from ..errors import ApiError, FieldError, error_responses
from ..routing import ApiRoute
from ..tokens import Principal, TokenIssued, TokenRequest, check_token_body, hash_token, issue_token, token_id

log = logging.getLogger("danvan.api")

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], route_class=ApiRoute)


def _refused(rule: str, message: str) -> ApiError:
    return ApiError(422, "validation_failed", "invalid request: body_id",
                    fields=[FieldError(field="body_id", rule=rule, message=message)])


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
    """Make a token for `role` (`body_id` is required for role `body` and refused for the others: one body of
    the registry in force today, not a family of district bodies nor a group; 422 on `body_id` otherwise). The
    token is in this answer only: it is stored hashed. For an `intake` token, `label` is the name of the
    sending system, the `source` of the petitions it sends. Role: `admin`.
    """
    if request.role == "body" and request.body_id is not None:
        try:
            check_token_body(load_bodies(), request.body_id, datetime.now(VN_TZ).date())
        except UnknownBody:
            raise _refused("body_unknown", f"no body {request.body_id} in the registry") from None
        except ValueError as exc:
            raise _refused("body_not_in_force", str(exc)) from None
    token = await issue_token(store.pool, request.role, request.body_id, request.label)
    issued = token_id(hash_token(token))
    log.info("token %s issued by %s: role %s body %s", issued, principal.id, request.role, request.body_id)
    return TokenIssued(token=token, id=issued, role=request.role, body_id=request.body_id, label=request.label)
