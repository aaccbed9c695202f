"""The `danvan` command called in-process: `danvan.cli.main` with its standard output and error captured, the
exit status argparse gives by `SystemExit` included."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys


class Cli:
    """`cli("history", case_id)` -> (exit status, stdout, stderr). Configuration comes from the environment,
    as for the command itself (set it with monkeypatch). `last_stdout_bytes` keeps what was written, undecoded
    (a ZIP, an XLSX), where the text returned has what UTF-8 cannot decode replaced."""

    last_stdout_bytes: bytes = b""

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from danvan.cli import main

        out_bytes = io.BytesIO()
        out = io.TextIOWrapper(out_bytes, encoding="utf-8", newline="")
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                status = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
        self.last_stdout_bytes = out_bytes.getvalue()
        return status, self.last_stdout_bytes.decode("utf-8", errors="replace"), err.getvalue()

    async def run_async(self, *args: str) -> tuple[int, str, str]:
        """The same from an async test: `main` runs its own event loop, so it runs in a thread."""
        return await asyncio.to_thread(self, *args)
