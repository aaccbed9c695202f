"""The API's history integrity is held to the latest signed checkpoint: the attacks that leave every chain
intact are named there too (and a removed case's 404 says it was removed)."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from danvan.settings import Settings
from eventstore import EventStore
from integrity.checkpoints import CheckpointLog
from integrity.database import take_checkpoint

from ..api.support import running, token
from ..conftest import secret_env
from .support import edit_and_rechain, remove_stream, truncate_and_rewind
from .test_attacks import tamper_db  # noqa: F401 (the fixture)


async def test_history_integrity_names_what_only_the_checkpoint_shows(
    tamper_db: tuple[str, EventStore], temporal_env: WorkflowEnvironment, tmp_path: Path  # noqa: F811
) -> None:
    url, store = tamper_db
    settings = Settings.from_env({
        "DANVAN_HOME": str(tmp_path), "DANVAN_DB_POOL_MAX": "2",
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host, **secret_env(),
    })
    log = CheckpointLog(settings.checkpoint_log, settings.checkpoint_key)
    supervisor = await token(store, "supervisor", label="giám sát viên")
    app = create_app(settings, url, temporal_client=temporal_env.client)
    async with running(app) as api:
        before = (await api.get("/v1/cases/ca-a/history", supervisor)).json()
        assert before["integrity"] == {"ok": True, "first_bad_version": None, "problem": None}
        await take_checkpoint(store, log)
        assert (await api.get("/v1/cases/ca-a/history", supervisor)).json()["integrity"]["ok"]
        await truncate_and_rewind(store, "ca-a", 3)
        await edit_and_rechain(store, "ca-b", 5, {"n": 5, "ghi chú": "đã sửa"})
        await remove_stream(store, "ca-c")
        assert (await store.verify()).ok  # every chain still verifies
        cut = (await api.get("/v1/cases/ca-a/history", supervisor)).json()
        assert cut["integrity"]["ok"] is False and cut["integrity"]["first_bad_version"] == 4
        assert cut["integrity"]["problem"].startswith("truncated: the events end at version 3, but checkpoint 1")
        rewritten = (await api.get("/v1/cases/ca-b/history", supervisor)).json()
        assert rewritten["integrity"]["ok"] is False and rewritten["integrity"]["problem"].startswith("rewritten")
        gone = await api.get("/v1/cases/ca-c/history", supervisor)
        assert gone.status_code == 404 and "removed, checkpoint 1 of" in gone.json()["error"]["message"]
        assert (await api.get("/v1/cases/ca-e/history", supervisor)).json()["integrity"]["ok"]
        # An edited leaves file makes every history say the log cannot be trusted.
        leaves = next(log.leaves_dir.glob("*.leaves"))
        leaves.write_bytes(leaves.read_bytes().replace(b"6 ", b"7 ", 1))
        log_broken = (await api.get("/v1/cases/ca-e/history", supervisor)).json()["integrity"]
        assert log_broken["ok"] is False and "checkpoint log cannot be trusted" in log_broken["problem"]
