"""A real fault in PostgreSQL for the tests of stalled cases: a trigger that makes every append to some cases'
streams fail, so their append step keeps failing (and is retried by Temporal) until the trigger is dropped."""

from __future__ import annotations

import uuid

from eventstore import EventStore


class AppendFault:
    MESSAGE = "injected fault: tablespace offline"

    def __init__(self, store: EventStore, *case_ids: str, message: str = MESSAGE) -> None:
        self.store = store
        self.case_ids = case_ids
        self.message = message
        self.name = f"fault_{uuid.uuid4().hex[:8]}"
        self.active = False

    async def inject(self) -> None:
        ids = ", ".join(f"'{c}'" for c in self.case_ids)
        await self.store.pool.execute(f"""
            CREATE FUNCTION {self.name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{self.message}'; END $$;
            CREATE TRIGGER {self.name} BEFORE INSERT ON events FOR EACH ROW
              WHEN (NEW.stream_id IN ({ids})) EXECUTE FUNCTION {self.name}();""")
        self.active = True

    async def remove(self) -> None:
        if self.active:
            await self.store.pool.execute(f"DROP TRIGGER {self.name} ON events; DROP FUNCTION {self.name}();")
            self.active = False
