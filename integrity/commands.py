"""`danvan verify`, `danvan checkpoint` and `danvan proof`: what the command line does, here so the CLI module
only wires them (each returns the exit status; a `CheckpointError` is a refusal)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from danvan.settings import Settings
from eventstore import BrokenStream, EventStore, VerifyReport

from . import signers
from .checkpoints import CheckpointError, CheckpointLog, public_key_file
from .database import take_checkpoint, verify_against_checkpoint
from .files import check_files

log = logging.getLogger("danvan.checkpoint")
#: How often a regular signer looks for an operator's request of a checkpoint now (seconds).
REQUEST_LOOK_EVERY = 1.0


def checkpoint_log(settings: Settings) -> CheckpointLog:
    return CheckpointLog(settings.checkpoint_log, settings.checkpoint_key)


def merge(report: VerifyReport, more: list[BrokenStream]) -> VerifyReport:
    """`report` with the streams Temporal's record finds broken: per stream the earliest bad version, and
    every finding in words."""
    by_stream = {b.stream_id: b for b in report.broken}
    for b in more:
        mine = by_stream.get(b.stream_id)
        if mine is None:
            by_stream[b.stream_id] = b
        else:
            first = b if b.first_bad_version < mine.first_bad_version else mine
            other = mine if first is b else b
            by_stream[b.stream_id] = first.model_copy(update={"problem": f"{first.problem}; also {other.problem}"})
    broken = sorted(by_stream.values(), key=lambda b: b.stream_id)
    first_bad = broken[0] if broken else None
    return report.model_copy(update={
        "broken": broken, "ok": not broken and not report.broken_rule_sets,
        "first_bad_stream": first_bad.stream_id if first_bad else None,
        "first_bad_version": first_bad.first_bad_version if first_bad else None,
        "problem": first_bad.problem if first_bad else None,
    })


def shown_time(signed: str) -> str:
    """A checkpoint's signed time (UTC, as signed) as the CLI shows every time: in Vietnam's, saying so."""
    from datetime import datetime

    from domain.calendar import VN_TZ

    try:
        instant = datetime.fromisoformat(signed.replace("Z", "+00:00"))
    except ValueError:
        return signed
    return f"{instant.astimezone(VN_TZ):%Y-%m-%d %H:%M:%S}+07:00"


async def run_verify(settings: Settings, url: str, case_id: str | None, *, temporal: bool, as_json: bool) -> int:
    """Every stream (or one) against its hash chain, the latest signed checkpoint and Temporal's record, and every
    file a case holds against the hash its event records (`integrity.files`)."""
    store = await EventStore.open(url, max_size=4)
    try:
        report, checkpoint = await verify_against_checkpoint(store, checkpoint_log(settings), case_id)
        notes: list[str] = []
        files = await check_files(store, case_id)
        report = merge(report, files.broken)
        if files.checked:
            notes.append(f"files: {files.checked} read back against the hash their event records")
        if checkpoint is None:
            notes.append(f"no signed checkpoint in {settings.checkpoint_log}: only the hash chains were checked "
                         "(run `danvan checkpoint`)")
        if temporal:
            report = await _against_temporal(settings, store, case_id, checkpoint, report, notes)
    finally:
        await store.close()
    if case_id and report.ok and report.events_checked == 0:
        # Nothing stored, nothing in the checkpoint, nothing in Temporal: no such case, and nothing to report.
        print(f"danvan verify: case {case_id} not found: no event is stored for it", file=sys.stderr)
        return 1
    if as_json:
        out: dict[str, Any] = report.model_dump(mode="json")
        out["checkpoint"] = checkpoint.fields if checkpoint else None
        out["notes"] = notes
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _print_verify(report, checkpoint, case_id, notes)
    return 0 if report.ok else 1


async def _against_temporal(settings: Settings, store: EventStore, case_id: str | None, checkpoint: Any,
                            report: VerifyReport, notes: list[str]) -> VerifyReport:
    """`report` with what Temporal's record of each stream's appends finds (a note says how many it compared)."""
    from temporalio.service import RPCError

    from danvan.client import connect

    from .database import read_heads
    from .temporal import check_streams

    streams = {case_id} if case_id else {h.stream_id for h in await read_heads(store)}
    if checkpoint is not None and case_id is None:
        streams |= {leaf.stream_id for leaf in checkpoint_log(settings).leaves(checkpoint)}
    try:
        async with asyncio.timeout(15):
            client = await connect(settings.temporal_address, settings.temporal_namespace)
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise CheckpointError(f"cannot reach Temporal at {settings.temporal_address} ({exc}); "
                              "`--no-temporal` checks without it") from exc
    try:
        found = await check_streams(client, store, streams)
    except RPCError as exc:
        raise CheckpointError(f"Temporal at {settings.temporal_address} failed to answer ({exc}); "
                              "`--no-temporal` checks without it") from exc
    notes.append(f"Temporal: {found.checked} stream(s) compared with their workflow's appends"
                 + (f", {len(found.unknown)} without a workflow in Temporal" if found.unknown else ""))
    return merge(report, found.broken)


def _print_verify(report: VerifyReport, checkpoint: Any, case_id: str | None, notes: list[str]) -> None:
    for b in report.broken:
        print(f"BROKEN {b.stream_id} at version {b.first_bad_version} [{b.kind}]: {b.problem}")
    for r in report.broken_rule_sets:
        print(f"BROKEN rule document {r.digest} [{r.kind}]: {r.problem}")
    against = f", against checkpoint {checkpoint.seq} of {shown_time(checkpoint.time)}" if checkpoint else ""
    state = "ok" if report.ok else ", ".join(
        [f"{len(report.broken)} broken stream(s)"] * bool(report.broken)
        + [f"{len(report.broken_rule_sets)} altered rule document(s)"] * bool(report.broken_rule_sets))
    documents = f"; {report.rule_sets_checked} rule document(s) checked" if case_id is None else ""
    print(f"{state}: {report.streams_checked} stream(s), {report.events_checked} event(s) checked{against}"
          f"{documents}")
    for note in notes:
        print(f"note: {note}")


async def _noted(what: str, call: Awaitable[None]) -> None:
    """A signer's note in the database (`integrity.signers`); one that fails never stops the signing."""
    try:
        await call
    except Exception as exc:
        log.warning("checkpoint signer: could not note %s in the database: %s", what, exc)


async def _take_one(store: EventStore, log_: CheckpointLog, signer: str, every: float | None) -> None:
    """One checkpoint, noted in the database with the operators' requests it answers; a refusal raises only
    when taken by hand (a regular signer logs it and goes on: the stack keeps serving, the alarm stays)."""
    try:
        requested = await signers.pending_requests(store.pool)
    except Exception:
        requested = []
    try:
        taken = await take_checkpoint(store, log_)
    except CheckpointError as exc:
        await _noted("the failure", signers.signer_failed(store.pool, signer, log_.path, str(exc)))
        await _noted("the requests", signers.requests_done(store.pool, requested, f"no checkpoint signed: {exc}"))
        if not every:
            raise
        log.error("no checkpoint signed: %s", exc)
        return
    c = taken.checkpoint
    await _noted("the requests", signers.requests_done(store.pool, requested, f"checkpoint {c.seq} signed"))
    await _noted("the checkpoint", signers.signer_signed(store.pool, signer, log_.path, c.seq, c.tree_size, c.root))
    line = (f"checkpoint {c.seq}: {c.tree_size} stream(s), root {c.root}, at {shown_time(c.time)} "
            f"(read {taken.read_ms:.0f} ms, signed and written {taken.sign_ms:.0f} ms)")
    if every:
        log.info("%s", line)
    else:
        print(line)
        print(f"log: {log_.path}")


async def _wait(store: EventStore, stop: asyncio.Event, every: float) -> bool:
    """Wait `every` seconds, or less when an operator asks for a checkpoint now (looked for each second);
    True when told to stop."""
    loop = asyncio.get_running_loop()
    until = loop.time() + every
    while (left := until - loop.time()) > 0:
        try:
            await asyncio.wait_for(stop.wait(), min(left, REQUEST_LOOK_EVERY))
            return True
        except TimeoutError:
            pass
        try:
            if await signers.pending_requests(store.pool):
                return False
        except Exception as exc:
            log.debug("checkpoint signer: requests not read: %s", exc)
    return False


async def run_checkpoint(settings: Settings, url: str, *, every: float | None,
                         stop: asyncio.Event | None = None) -> int:
    """Take one checkpoint, or one every `every` seconds (and whenever an operator asks for one) until
    SIGINT/SIGTERM (or `stop`). The signer notes itself in the database (`integrity.signers`) for the stalled
    scan."""
    log_ = checkpoint_log(settings)
    store = await EventStore.open(url, max_size=2)
    signer = signers.signer_id(log_.path)
    if stop is None:
        stop = asyncio.Event()
        if every:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
    if every:
        key = _fingerprint(settings)
        await _noted("its start", signers.signer_started(store.pool, signer, log_.path, max(1, round(every)), key))
    try:
        while True:
            await _take_one(store, log_, signer, every)
            if not every:
                print(f"public key: {public_key_file(settings.checkpoint_key)}")
                return 0
            if await _wait(store, stop, every):
                await _noted("its stop", signers.signer_stopped(store.pool, signer))
                return 0
    finally:
        await store.close()


def _fingerprint(settings: Settings) -> str | None:
    from .checkpoints import load_or_create_key
    from .proofcheck import fingerprint

    try:
        return fingerprint(load_or_create_key(settings.checkpoint_key).public_key())
    except CheckpointError:
        return None


async def run_proof(settings: Settings, url: str, case_id: str, output: str | None) -> int:
    """The inclusion proof of a case's head in the latest checkpoint, once the case verifies against it."""
    log_ = checkpoint_log(settings)
    store = await EventStore.open(url, max_size=2)
    try:
        report, checkpoint = await verify_against_checkpoint(store, log_, case_id)
    finally:
        await store.close()
    if checkpoint is None:
        raise CheckpointError(f"no checkpoint in {log_.path}: run `danvan checkpoint` first")
    if not report.ok:
        raise CheckpointError(f"case {case_id} does not verify: version {report.first_bad_version}: "
                              f"{report.problem}")
    proof = await asyncio.to_thread(log_.proof, case_id)
    text = json.dumps(proof, ensure_ascii=False, indent=2) + "\n"
    if output:
        await asyncio.to_thread(Path(output).write_text, text, encoding="utf-8")
        print(f"proof of {case_id} at version {proof['leaf']['version']} in checkpoint {checkpoint.seq} written "
              f"to {output}; check it with: python -m integrity.proofcheck {output} --public-key "
              f"{public_key_file(settings.checkpoint_key)}")
    else:
        sys.stdout.write(text)
    return 0
