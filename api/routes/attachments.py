"""A case's files: `POST /v1/cases/{id}/attachments` (multipart), the list, and each file's bytes.

A file is checked and stored first (`api.attachments`), then recorded in the case by the `attach` command, sent
as its Update like any command: the kind's authority table says who may attach (`domain.authority`: whoever
takes part in the case), the case refuses what its state does not allow (an archived case, the same file
twice: 409 with the rule), and an `Idempotency-Key` makes a retried upload apply once. Reading follows the
reading rule of the case itself (`api.auth.may_access_case`); a read of a denunciation's files is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from danvan.settings import Settings
from domain.attachments import Attach
from domain.idempotency import RULE as KEY_REUSED
from domain.petitions.model import PetitionIntake
from domain.petitions.views import CaseView
from eventstore import CaseRecord, EventStore
from eventstore.blobs import BlobNotFound
from workflows.plan_task import TaskView

from ..attachments import (
    AttachmentAltered,
    AttachmentErased,
    AttachmentFiles,
    AttachmentList,
    AttachmentView,
    Stored,
    category_of,
    check_upload,
    file_headers,
    find_attachment,
    list_attachments,
)
from ..auth import check_case_access, require
from ..deps import Store, Temporal
from ..errors import ApiError, FieldError, error_responses, field_errors
from ..filters import IdempotencyKey
from ..identities import IdentityVault, under_denunciation_regime
from ..limits import PETITION_FILES_PATH, Refusal, check_json
from ..routing import ApiRoute
from ..tokens import Principal
from .cases import audit_read
from .petitions import (
    KINDS,
    PetitionOpened,
    actor_of,
    case_taking_commands,
    check_authority,
    deliver,
    receive_petition,
    vault_of,
)

router = APIRouter(tags=["attachments"], route_class=ApiRoute)

CaseId = Annotated[str, Path(min_length=1, max_length=200)]
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the file's SHA-256, 64 lower-case hex digits")]
HREF = "/v1/cases/{case_id}/attachments/{{sha256}}"
ReadRoles = Annotated[Principal, Depends(require("intake", "body", "supervisor", "operator", "admin"))]


class AttachmentAnswer(BaseModel):
    case_id: str
    attachment: AttachmentView | None
    events: list[str]
    duplicate: bool
    case: CaseView | TaskView


async def files_of(request: Request) -> AttachmentFiles:  # async: FastAPI runs a plain def in a thread pool
    files: AttachmentFiles = request.app.state.attachments
    return files


Files = Annotated[AttachmentFiles, Depends(files_of)]


def _multipart(max_files: int) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "the file; its type is read from its content"},
            "category": {"type": "string", "enum": ["letter", "evidence", "decision", "other"]},
            "reason": {"type": "string", "maxLength": 2000},
        }}}}}, "x-max-files": max_files}


def form_error(exc: MultiPartException) -> ApiError:
    return ApiError(422, "validation_failed", "invalid request: body", fields=[
        FieldError(field="body", rule="multipart_invalid", message=f"the multipart body cannot be read: {exc}")])


def one_text(form: Any, name: str, limit: int) -> str | None:
    """A text field of the form, at most `limit` characters, given at most once; 422 otherwise."""
    values = form.getlist(name)
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str) or len(values[0]) > limit:
        raise ApiError(422, "validation_failed", f"invalid request: {name}", fields=[FieldError(
            field=name, rule="form_field", message=f"{name}: one text of at most {limit} characters")])
    return str(values[0])


def one_file(form: Any) -> UploadFile:
    files = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
    if len(files) != 1 or len(form.getlist("file")) != 1:
        raise ApiError(422, "validation_failed", "invalid request: file", fields=[FieldError(
            field="file", rule="attachment.one_file", message="send one file, in the part named `file`")])
    return files[0]


async def store_for_case(files: AttachmentFiles, store: EventStore, case: CaseRecord, upload: UploadFile,
                         settings: Settings, field: str = "file") -> Stored:
    """Check an upload and store its bytes for `case`: encrypted when the case is under the denunciation regime."""
    checked = await check_upload(upload, settings, field)
    encrypt = await under_denunciation_regime(store.pool, case)
    ref = case.summary.get("petitioner_ref") if encrypt else None
    return await files.store(upload, checked, case_id=case.case_id, encrypt=encrypt,
                             ref=ref if isinstance(ref, str) else None)


def attach_command(stored: Stored, category: str | None, reason: str | None) -> Attach:
    c = stored.checked
    return Attach(name=c.name, media_type=c.media_type, size=c.size, sha256=c.sha256,
                  category=category_of(category), encrypted=stored.encrypted, stored=stored.stored, reason=reason)


@router.post(
    "/v1/cases/{case_id}/attachments",
    response_model=AttachmentAnswer,
    status_code=201,
    summary="Add a file to a case",
    responses=error_responses(401, 403, 404, 409, 413, 415, 422, 503),
    openapi_extra=_multipart(1),
)
async def add_attachment(
    request: Request,
    case_id: CaseId,
    store: Store,
    temporal: Temporal,
    files: Files,
    principal: Annotated[Principal, Depends(require())],
    idempotency_key: IdempotencyKey = None,
) -> AttachmentAnswer:
    """One file (`file`, `multipart/form-data`), with its `category` (`letter`, `evidence`, `decision`, `other`)
    and a `reason`. Who may add one is the `attach` row of the case kind's authority table. Its type is sniffed
    from its content and held to `DANVAN_ATTACHMENT_TYPES` (415 `attachment.type_not_allowed`), its size to
    `DANVAN_ATTACHMENT_MAX_BYTES` (413 `attachment.too_large`), its name to the name rules (422
    `attachment.name_*`). The same file twice on one case: 409 `attachment.duplicate`. 201 with the file as listed.
    """
    settings: Settings = request.app.state.settings
    case, kind_name = await case_taking_commands(store, case_id, principal)
    probe = Attach(name="probe", media_type="application/pdf", size=1, sha256="0" * 64)
    # 403 before a byte is read or stored when the sender may not attach to the case.
    check_authority(KINDS[kind_name], case, probe, actor_of(principal), principal)
    try:
        async with request.form(max_files=1, max_fields=4) as form:
            upload = one_file(form)
            reason = one_text(form, "reason", 2000)
            category = category_of(one_text(form, "category", 20))
            stored = await store_for_case(files, store, case, upload, settings)
    except MultiPartException as exc:
        raise form_error(exc) from exc
    answer = await deliver(store, temporal, principal, case, kind_name, attach_command(stored, category, reason),
                           idempotency_key)
    listed = [a for a in await list_attachments(store.pool, case_id, HREF.format(case_id=case_id))
              if a.sha256 == stored.checked.sha256]
    return AttachmentAnswer(case_id=case_id, attachment=listed[0] if listed else None, events=answer.events,
                            duplicate=answer.duplicate, case=answer.case)


async def readable_case(store: EventStore, case_id: str, principal: Principal) -> CaseRecord:
    case = await store.get_case(case_id)
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id!r}")
    check_case_access(principal, case)
    return case


@router.get(
    "/v1/cases/{case_id}/attachments",
    response_model=AttachmentList,
    summary="A case's files",
    responses=error_responses(401, 403, 404, 422),
)
async def get_attachments(case_id: CaseId, store: Store, principal: ReadRoles) -> AttachmentList:
    """The files of the case, in the order they came: name, sniffed type, size, SHA-256, category, who added it
    and when, and where its bytes are read. Whoever may read the case may list them."""
    case = await readable_case(store, case_id, principal)
    await audit_read(store, case, principal, "attachments")
    return AttachmentList(case_id=case_id, attachments=await list_attachments(
        store.pool, case_id, HREF.format(case_id=case_id)))


async def file_response(files: AttachmentFiles, store: EventStore, case: CaseRecord, sha256: str,
                        principal: Principal) -> StreamingResponse:
    """The bytes of one of `case`'s files, streamed, with their headers; the read recorded for a denunciation."""
    found = await find_attachment(store.pool, case.case_id, sha256)
    if found is None:
        raise ApiError(404, "not_found", f"case {case.case_id} holds no file {sha256}")
    _, data = found
    await audit_read(store, case, principal, "attachment")
    try:
        chunks = await files.open(case.case_id, data)
        first = await anext(chunks, b"")
    except AttachmentErased as exc:
        raise ApiError(410, "attachment.erased", "this file was erased with the identity of its case "
                       f"({exc.erased_at.isoformat()})") from exc
    except (BlobNotFound, AttachmentAltered, LookupError) as exc:
        raise ApiError(500, "attachment.unreadable", f"the stored bytes of {sha256} cannot be read "
                       "(`danvan verify` names what is wrong)") from exc

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), headers=file_headers(data))


@router.get(
    "/v1/cases/{case_id}/attachments/{sha256}",
    summary="One file's bytes",
    response_class=StreamingResponse,
    responses={200: {"description": "the file, with its sniffed type", "content": {"application/octet-stream": {}}},
               **error_responses(401, 403, 404, 410, 422)},
)
async def get_attachment(case_id: CaseId, sha256: Sha256, store: Store, files: Files,
                         principal: ReadRoles) -> StreamingResponse:
    """The file's bytes, with its sniffed `Content-Type`, `Content-Disposition` naming it (the NFC name in
    `filename*`), `X-Content-Type-Options: nosniff` and `Cache-Control: private, no-store`. The same access as
    reading the case; 410 `attachment.erased` for a denunciation's file whose key was destroyed with the
    identity."""
    case = await readable_case(store, case_id, principal)
    return await file_response(files, store, case, sha256, principal)


# -- a petition with its files ---------------------------------------------------------------------------------



class PetitionWithFiles(PetitionOpened):
    """`POST /v1/petitions`'s answer, and the files the case holds after it."""

    attachments: list[AttachmentView]


def petition_part(form: Any, settings: Settings) -> PetitionIntake:
    """The `petition` part: JSON held to the edge's rules and read as the JSON route reads its body; 422 with the
    fields under `petition.` otherwise."""
    raw = one_text(form, "petition", settings.max_body_bytes)
    if raw is None:
        raise ApiError(422, "validation_failed", "invalid request: petition", fields=[FieldError(
            field="petition", rule="missing", message="the petition is the part named `petition`, as JSON")])
    try:
        check_json(raw.encode("utf-8"), settings.max_json_depth)
        return PetitionIntake.model_validate_json(raw)
    except Refusal as refusal:
        fields = [f.model_copy(update={"field": f"petition.{f.field}" if f.field != "body" else "petition"})
                  for f in refusal.fields or []]
        raise ApiError(422, "validation_failed", "invalid request: petition", fields=fields) from None
    except ValidationError as exc:
        fields = field_errors([{**e, "loc": ("body", "petition", *e["loc"])} for e in exc.errors()])
        raise ApiError(422, "validation_failed", "invalid request: petition", fields=fields) from None


#: The key a petition's file is attached under: the same file sent again with the same petition applies once.
def file_key(sha256: str) -> str:
    return f"petition-file-{sha256}"


async def attach_sent_files(store: EventStore, temporal: Any, files: AttachmentFiles, principal: Principal,
                            case_id: str, uploads: list[UploadFile], settings: Settings) -> None:
    """Store and attach each file sent with a petition; one the case holds already is left as it is."""
    case, kind_name = await case_taking_commands(store, case_id, principal)
    for i, upload in enumerate(uploads):
        stored = await store_for_case(files, store, case, upload, settings, field=f"files.{i}")
        try:
            await deliver(store, temporal, principal, case, kind_name, attach_command(stored, "letter", None),
                          file_key(stored.checked.sha256))
        except ApiError as exc:
            if exc.code not in ("attachment.duplicate", KEY_REUSED):
                raise  # the same file under another name, or sent before on its own: the case has it


@router.post(PETITION_FILES_PATH, include_in_schema=False, status_code=201, response_model=PetitionWithFiles)
async def receive_petition_with_files(
    request: Request,
    response: Response,
    store: Store,
    temporal: Temporal,
    files: Files,
    vault: Annotated[IdentityVault, Depends(vault_of)],
    principal: Annotated[Principal, Depends(require("intake", "admin"))],
) -> PetitionWithFiles:
    """`POST /v1/petitions` as `multipart/form-data`: the petition as JSON in the part `petition`, and up to
    `DANVAN_ATTACHMENT_MAX_FILES` files in parts named `files` (the scanned letter, evidence). Every file is
    checked before anything is sealed or started; the case is opened as by the JSON route, then each file is
    stored and attached as a `letter` by the sender. Sent again as it was, it is the same case with the same
    files (each is attached under a key made of its hash)."""
    settings: Settings = request.app.state.settings
    try:
        async with request.form(max_files=settings.attachment_max_files, max_fields=4) as form:
            intake = petition_part(form, settings)
            uploads = [v for v in form.getlist("files") if isinstance(v, UploadFile)]
            if len(uploads) != len(form.getlist("files")):
                raise ApiError(422, "validation_failed", "invalid request: files", fields=[FieldError(
                    field="files", rule="attachment.one_file", message="each `files` part is a file")])
            for i, upload in enumerate(uploads):
                await check_upload(upload, settings, f"files.{i}")
            opened = await receive_petition(intake, request, response, store, temporal, vault, principal)
            await attach_sent_files(store, temporal, files, principal, opened.case_id, uploads, settings)
    except MultiPartException as exc:
        raise form_error(exc) from exc
    listed = await list_attachments(store.pool, opened.case_id, HREF.format(case_id=opened.case_id))
    return PetitionWithFiles(**opened.model_dump(), attachments=listed)
