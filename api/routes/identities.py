"""Erasing a petitioner's identity (admin): crypto-shredding, recorded with who, when and why."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from ..auth import require
from ..errors import ApiError, error_responses
from ..identities import Erasure, IdentityErased, IdentityNotFound, IdentityVault
from ..routing import ApiRoute
from ..tokens import Principal
from .cases import vault_dependency

log = logging.getLogger("danvan.api")

router = APIRouter(prefix="/v1/identities", tags=["identities"], route_class=ApiRoute)


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=2000, description="why the identity is erased; recorded")


class ErasureOut(BaseModel):
    """The record of an erasure: the identity behind `ref` can no longer be read by anyone."""

    ref: str
    case_id: str
    erased_by: str
    role: str
    reason: str
    erased_at: datetime


def erasure_out(erasure: Erasure) -> ErasureOut:
    return ErasureOut(ref=erasure.ref, case_id=erasure.case_id, erased_by=erasure.erased_by, role=erasure.role,
                      reason=erasure.reason, erased_at=erasure.erased_at)


@router.post(
    "/{ref}/erase",
    response_model=ErasureOut,
    summary="Erase a petitioner's identity for good (crypto-shredding)",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def erase_identity(
    ref: Annotated[str, Path(min_length=1, max_length=100, description="the case's `petitioner_ref`")],
    request: EraseRequest,
    vault: Annotated[IdentityVault, Depends(vault_dependency)],
    principal: Annotated[Principal, Depends(require("admin"))],
) -> ErasureOut:
    """Destroy the identity's data key and ciphertext, and record who erased it, when and why. The events,
    which hold only the ref, and every hash chain are unchanged; a later read of the identity answers 410.
    404 for an unknown ref; 409 (`identity.erased`) when it was already erased. Role: `admin`.
    """
    try:
        erasure = await vault.erase(ref, by=principal.label, role=principal.role, reason=request.reason.strip(),
                                    token_id=principal.id)
    except IdentityNotFound:
        raise ApiError(404, "not_found", f"no sealed identity {ref!r}") from None
    except IdentityErased as exc:
        when = f" on {exc.erasure.erased_at.isoformat()}" if exc.erasure else ""
        raise ApiError(409, "identity.erased", f"identity {ref!r} was already erased{when}") from None
    log.info("identity %s of case %s erased by %s", ref, erasure.case_id, principal.id)
    return erasure_out(erasure)
