"""A case's files through the HTTP API, on the real PostgreSQL, Temporal dev server and worker: the round trip,
the type read from the content, the limits, who may add and read them, a denunciation's files encrypted at rest
and shredded with its identity, and a petition sent with its files."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import unicodedata
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from eventstore import EventStore

from .support import Api, petition, running, token, unique

RECEIVING = "BAN_TCD"
LEAD = "THANH_TRA_TINH"


def pdf(extra: bytes = b"") -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" + extra + secrets.token_bytes(64)


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + secrets.token_bytes(200)


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", f"<w:document>{secrets.token_hex(8)}</w:document>")
    return out.getvalue()


async def upload(api: Api, tok: str, case_id: str, data: bytes, name: str = "Đơn khiếu nại.pdf",
                 content_type: str = "application/pdf", key: str | None = None, **fields: str) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/v1/cases/{case_id}/attachments", tok, headers=headers,
                          files={"file": (name, data, content_type)}, data=fields)


@pytest_asyncio.fixture(scope="module")
async def cast(store: EventStore) -> dict[str, str]:
    source = unique("attach-backoffice")
    return {
        "source": source,
        "intake": await token(store, "intake", label=source),
        "receiving": await token(store, "body", RECEIVING, unique("tcd")),
        "lead": await token(store, "body", LEAD, unique("ttr")),
        "stranger": await token(store, "body", "CA_TINH", unique("ca")),
        "supervisor": await token(store, "supervisor", label=unique("gs")),
        "operator": await token(store, "operator", label=unique("op")),
        "other_intake": await token(store, "intake", label=unique("other-backoffice")),
    }


async def open_case(api: Api, cast: dict[str, str], kind: str = "complaint") -> str:
    opened = await api.post("/v1/petitions", cast["intake"],
                            json=petition(cast["source"], kind=kind, receiving_body=RECEIVING))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    classified = await api.post(f"/v1/cases/{case_id}/commands", cast["receiving"],
                                json={"type": "classify", "lead_body": LEAD},
                                headers={"Idempotency-Key": str(uuid.uuid4())})
    assert classified.status_code == 200, classified.text
    return case_id


async def test_a_file_goes_in_and_comes_back_with_its_sniffed_type_and_nfc_name(
        api: Api, cast: dict[str, str], store: EventStore) -> None:
    case_id = await open_case(api, cast)
    data = pdf()
    name = unicodedata.normalize("NFD", "Biên bản xác minh đất đai.pdf")
    added = await upload(api, cast["lead"], case_id, data, name=name, content_type="image/png",
                         category="evidence", reason="Biên bản làm việc tại xã")
    assert added.status_code == 201, added.text
    answer = added.json()
    file = answer["attachment"]
    sha256 = hashlib.sha256(data).hexdigest()
    assert answer["events"] == ["AttachmentAdded"] and not answer["duplicate"]
    assert file["sha256"] == sha256 and file["size"] == len(data)
    assert file["media_type"] == "application/pdf"  # read from the content, not from the request
    assert file["name"] == unicodedata.normalize("NFC", name) and file["category"] == "evidence"
    assert file["added_at"].endswith("+07:00") and file["added_by"].startswith("body:")
    listed = await api.get(f"/v1/cases/{case_id}/attachments", cast["receiving"])
    assert listed.status_code == 200 and listed.json()["attachments"] == [file]
    got = await api.get(file["href"], cast["receiving"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == (
        "inline; filename=\"Bien ban xac minh dat dai.pdf\"; "
        "filename*=UTF-8''Bi%C3%AAn%20b%E1%BA%A3n%20x%C3%A1c%20minh%20%C4%91%E1%BA%A5t%20%C4%91ai.pdf")
    # The event is in the case's hash chain, with everything the file is known by.
    history = (await api.get(f"/v1/cases/{case_id}/history", cast["supervisor"])).json()
    event = history["events"][-1]
    assert event["type"] == "AttachmentAdded" and history["integrity"]["ok"]
    assert {k: event["data"][k] for k in ("sha256", "size", "media_type", "name")} == {
        "sha256": sha256, "size": len(data), "media_type": "application/pdf", "name": file["name"]}
    assert await store.pool.fetchval("SELECT size FROM blobs WHERE hash = $1", sha256) == len(data)
    # The same file again is refused; the same upload under its key again is the same answer.
    again = await upload(api, cast["lead"], case_id, data)
    assert again.status_code == 409 and again.json()["error"]["code"] == "attachment.duplicate"
    key = str(uuid.uuid4())
    other = png()
    first = await upload(api, cast["lead"], case_id, other, name="ảnh.png", key=key)
    version = await store.stream_version(case_id)
    repeat = await upload(api, cast["lead"], case_id, other, name="ảnh.png", key=key)
    assert first.status_code == 201 and repeat.status_code == 201, repeat.text
    assert repeat.json()["attachment"] == first.json()["attachment"]  # the first answer, applied once
    assert await store.stream_version(case_id) == version
    assert [a["media_type"] for a in (await api.get(f"/v1/cases/{case_id}/attachments",
                                                    cast["lead"])).json()["attachments"]] == [
        "application/pdf", "image/png"]


@pytest.mark.parametrize(("data", "name", "found"), [
    (b"<html><script>alert(1)</script></html>", "đơn.pdf", "unknown"),
    (b"MZ\x90\x00\x03\x00\x00\x00" + secrets.token_bytes(100), "scan.pdf", "application/x-msdownload"),
    (b"PK\x03\x04" + secrets.token_bytes(100), "hồ sơ.docx", "application/zip"),
])
async def test_a_file_whose_content_is_not_an_allowed_type_is_refused_naming_what_it_is(
        api: Api, cast: dict[str, str], store: EventStore, data: bytes, name: str, found: str) -> None:
    case_id = await open_case(api, cast)
    before = await store.stream_version(case_id)
    refused = await upload(api, cast["lead"], case_id, data, name=name, content_type="application/pdf")
    assert refused.status_code == 415, refused.text
    error = refused.json()["error"]
    assert error["code"] == "attachment.type_not_allowed" and found in error["message"]
    assert error["fields"] == [{"field": "file", "rule": "attachment.type_not_allowed", "message": error["message"]}]
    assert await store.stream_version(case_id) == before
    assert not await store.pool.fetchval("SELECT count(*) FROM blobs WHERE hash = $1",
                                         hashlib.sha256(data).hexdigest())


async def test_office_documents_and_images_are_recognised(api: Api, cast: dict[str, str]) -> None:
    case_id = await open_case(api, cast)
    for data, media in ((docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                        (png(), "image/png"), (b"\xff\xd8\xff\xe0\x00\x10JFIF" + secrets.token_bytes(50),
                                               "image/jpeg")):
        added = await upload(api, cast["lead"], case_id, data, name="tệp", content_type="text/plain")
        assert added.status_code == 201, added.text
        assert added.json()["attachment"]["media_type"] == media


@pytest.mark.parametrize(("name", "rule"), [
    ("../../etc/passwd", "attachment.name_path"), ("a\\b.pdf", "attachment.name_path"),
    ("đơn\u202efdp.exe", "attachment.name_control"), ("x" * 201 + ".pdf", "attachment.name_too_long"),
])
async def test_a_bad_file_name_is_refused_with_its_rule(api: Api, cast: dict[str, str], store: EventStore,
                                                       name: str, rule: str) -> None:
    case_id = await open_case(api, cast)
    before = await store.stream_version(case_id)
    refused = await upload(api, cast["lead"], case_id, pdf(), name=name)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0] == {"field": "file.filename", "rule": rule,
                                                    "message": refused.json()["error"]["fields"][0]["message"]}
    assert await store.stream_version(case_id) == before


@pytest_asyncio.fixture(scope="module")
async def small_api(api_settings: Settings, database_url: str, temporal_env: WorkflowEnvironment,
                    case_worker: None) -> AsyncIterator[Api]:
    """The app with files of at most 4 KiB, two to a request, and a body limit of 2 KiB."""
    settings = Settings.from_env({"TEMPORAL_ADDRESS": api_settings.temporal_address, "DANVAN_DB_POOL_MAX": "2",
                                  "DANVAN_ATTACHMENT_MAX_BYTES": "4096", "DANVAN_ATTACHMENT_MAX_FILES": "2",
                                  "DANVAN_MAX_BODY_BYTES": "2048"})
    async with running(create_app(settings, database_url, temporal_client=temporal_env.client)) as client:
        yield client


async def test_the_size_limits_are_settings_answered_with_413_naming_the_limit(
        small_api: Api, cast: dict[str, str], store: EventStore) -> None:
    case_id = await open_case(small_api, cast)
    before = await store.stream_version(case_id)
    refused = await upload(small_api, cast["lead"], case_id, pdf(b"x" * 4100))
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "attachment.too_large" and "4096 bytes" in error["message"]
    assert error["fields"][0]["rule"] == "attachment.too_large"
    # Past what a whole request may carry, the edge refuses it while it is being read.
    huge = await upload(small_api, cast["lead"], case_id, pdf(b"x" * 20_000))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "attachment.too_large", huge.text
    assert "at most" in huge.json()["error"]["message"]
    empty = await upload(small_api, cast["lead"], case_id, b"")
    assert empty.status_code == 422 and empty.json()["error"]["fields"][0]["rule"] == "attachment.empty"
    assert await store.stream_version(case_id) == before
    fits = await upload(small_api, cast["lead"], case_id, pdf(b"x" * 3000))
    assert fits.status_code == 201, fits.text


async def test_who_may_add_and_read_a_file_follows_the_case(api: Api, cast: dict[str, str]) -> None:
    case_id = await open_case(api, cast)
    added = await upload(api, cast["intake"], case_id, pdf(), name="Đơn.pdf", category="letter")
    assert added.status_code == 201, added.text  # the intake system that sent the petition
    href = added.json()["attachment"]["href"]
    for who, code in (("stranger", "authority.attach"), ("other_intake", "authority.attach"),
                      ("supervisor", "authority.attach"), ("operator", "authority.attach")):
        refused = await upload(api, cast[who], case_id, pdf())
        assert refused.status_code == 403 and refused.json()["error"]["code"] == code, (who, refused.text)
    for who in ("intake", "receiving", "lead", "supervisor", "operator"):
        assert (await api.get(href, cast[who])).status_code == 200, who
        assert (await api.get(f"/v1/cases/{case_id}/attachments", cast[who])).status_code == 200, who
    for who in ("stranger", "other_intake"):
        assert (await api.get(href, cast[who])).status_code == 403, who
        assert (await api.get(f"/v1/cases/{case_id}/attachments", cast[who])).status_code == 403, who
    assert (await api.get(href)).status_code == 401
    assert (await api.get(f"/v1/cases/{case_id}/attachments/{'0' * 64}", cast["lead"])).status_code == 404
    assert (await api.get(f"/v1/cases/{case_id}/attachments/NOT-A-HASH", cast["lead"])).status_code == 422


async def test_a_file_is_not_sent_as_a_json_command(api: Api, cast: dict[str, str]) -> None:
    case_id = await open_case(api, cast)
    refused = await api.post(f"/v1/cases/{case_id}/commands", cast["lead"], json={
        "type": "attach", "name": "x.pdf", "media_type": "application/pdf", "size": 10, "sha256": "a" * 64})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0]["rule"] == "attachment.upload_route"


async def test_a_denunciations_files_are_encrypted_at_rest_read_by_its_bodies_and_shredded_with_its_identity(
        api: Api, cast: dict[str, str], store: EventStore) -> None:
    case_id = await open_case(api, cast, kind="denunciation")
    data = pdf(b"Ho ten nguoi to cao: Nguyen Van A")
    added = await upload(api, cast["lead"], case_id, data, name="Đơn tố cáo.pdf", category="letter")
    assert added.status_code == 201, added.text
    sha256 = hashlib.sha256(data).hexdigest()
    assert added.json()["attachment"]["encrypted"]
    assert not await store.pool.fetchval("SELECT count(*) FROM blobs WHERE hash = $1", sha256)
    stored = await store.pool.fetchval("SELECT stored FROM attachment_keys WHERE case_id = $1", case_id)
    chunks = await store.pool.fetch(
        "SELECT data FROM blob_chunks c JOIN blobs b USING (blob_id) WHERE b.hash = $1", stored)
    assert chunks and all(b"Nguyen Van A" not in bytes(c["data"]) for c in chunks)
    got = await api.get(f"/v1/cases/{case_id}/attachments/{sha256}", cast["receiving"])
    assert got.status_code == 200 and got.content == data
    reads = (await api.get(f"/v1/cases/{case_id}/reads", cast["supervisor"])).json()
    assert "attachment" in [r["what"] for r in reads["reads"]]
    ref = (await api.get(f"/v1/cases/{case_id}", cast["supervisor"])).json()["summary"]["petitioner_ref"]
    admin = await token(store, "admin", label=unique("admin"))
    erased = await api.post(f"/v1/identities/{ref}/erase", admin, json={"reason": "Hết thời hạn lưu trữ theo quy định"})
    assert erased.status_code == 200, erased.text
    gone = await api.get(f"/v1/cases/{case_id}/attachments/{sha256}", cast["lead"])
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "attachment.erased"
    # The event and its hash chain are as they were.
    assert (await api.get(f"/v1/cases/{case_id}/history", cast["supervisor"])).json()["integrity"]["ok"]


async def test_a_petition_is_received_with_its_files_in_one_multipart_request(
        api: Api, cast: dict[str, str], store: EventStore) -> None:
    body = petition(cast["source"], receiving_body=RECEIVING)
    letter, photo = pdf(), png()
    files = [("files", ("Đơn khiếu nại.pdf", letter, "application/pdf")), ("files", ("ảnh.png", photo, "image/png"))]
    sent = await api.post("/v1/petitions", cast["intake"], data={"petition": json.dumps(body, ensure_ascii=False)},
                          files=files)
    assert sent.status_code == 201, sent.text
    answer = sent.json()
    case_id = answer["case_id"]
    assert [(a["name"], a["media_type"], a["category"]) for a in answer["attachments"]] == [
        ("Đơn khiếu nại.pdf", "application/pdf", "letter"), ("ảnh.png", "image/png", "letter")]
    version = await store.stream_version(case_id)
    again = await api.post("/v1/petitions", cast["intake"], data={"petition": json.dumps(body)}, files=files)
    assert again.status_code == 200, again.text
    assert len(again.json()["attachments"]) == 2 and await store.stream_version(case_id) == version
    got = await api.get(answer["attachments"][0]["href"], cast["intake"])
    assert got.content == letter


async def test_a_petition_with_a_bad_part_opens_nothing(api: Api, cast: dict[str, str], store: EventStore) -> None:
    body = petition(cast["source"], receiving_body=RECEIVING)
    bad_file = await api.post("/v1/petitions", cast["intake"], data={"petition": json.dumps(body)},
                              files=[("files", ("đơn.pdf", b"<html></html>", "application/pdf"))])
    assert bad_file.status_code == 415, bad_file.text
    assert bad_file.json()["error"]["fields"][0]["field"] == "files.0"
    no_name = await api.post("/v1/petitions", cast["intake"], data={"petition": json.dumps({**body, "subject": ""})},
                             files=[("files", ("đơn.pdf", pdf(), "application/pdf"))])
    assert no_name.status_code == 422, no_name.text
    assert no_name.json()["error"]["fields"][0]["field"] == "petition.subject"
    not_json = await api.post("/v1/petitions", cast["intake"], data={"petition": "{not json"},
                              files=[("files", ("đơn.pdf", pdf(), "application/pdf"))])
    assert not_json.status_code == 422 and not_json.json()["error"]["fields"][0]["rule"] == "json_invalid"
    assert await store.pool.fetchval("SELECT count(*) FROM cases WHERE external_ref = $1", body["external_ref"]) == 0


async def test_verify_names_a_file_altered_in_the_database(
        api: Api, cast: dict[str, str], store: EventStore, cli: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> None:
    monkeypatch.setenv("DANVAN_CHECKPOINT_LOG", str(tmp_path / "checkpoints.log"))
    monkeypatch.setenv("DANVAN_CHECKPOINT_KEY", str(tmp_path / "checkpoint.key"))
    case_id = await open_case(api, cast)
    data = pdf(secrets.token_bytes(300_000))  # more than one chunk
    added = await upload(api, cast["lead"], case_id, data, name="Quyết định đã ký.pdf", category="decision")
    assert added.status_code == 201, added.text
    version = added.json()["case"]["version"]
    status, out, err = await cli.run_async("verify", case_id, "--no-temporal")
    assert status == 0, (out, err)
    assert "files: 1 read back" in out
    # Behind the system's back: one byte of the second chunk changed, as a database writer could.
    sha256 = hashlib.sha256(data).hexdigest()
    await store.pool.execute(
        "UPDATE blob_chunks SET data = set_byte(data, 7, (get_byte(data, 7) + 1) % 256) "
        "WHERE blob_id = (SELECT blob_id FROM blobs WHERE hash = $1) AND seq = 1", sha256)
    status, out, err = await cli.run_async("verify", case_id, "--no-temporal")
    assert status == 1, (out, err)
    line = out.splitlines()[0]
    assert line.startswith(f"BROKEN {case_id} at version {version} [file]: file 'Quyết định đã ký.pdf'"), line
    assert f"not to the recorded {sha256}" in line
    status, out, _ = await cli.run_async("verify", case_id, "--no-temporal", "--json")
    assert status == 1 and json.loads(out)["broken"][0]["kind"] == "file"
    # The chunk gone altogether is found too.
    await store.pool.execute(
        "DELETE FROM blob_chunks WHERE blob_id = (SELECT blob_id FROM blobs WHERE hash = $1) AND seq = 1", sha256)
    status, out, _ = await cli.run_async("verify", case_id, "--no-temporal")
    assert status == 1 and "[file]" in out
