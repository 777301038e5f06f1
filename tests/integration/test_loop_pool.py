"""The event loop's PostgreSQL connections, when the server drops them (a restart, a failover).

A request's statements on PostgreSQL run over a pool of the event loop's own. Its connections are
not pinged at every checkout (a round trip per unit of work); these tests hold it to what a
client of the service must still be able to count on.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
from sqlalchemy.exc import DBAPIError

from miaopi.records import cases
from miaopi.records.database import Database
from tests.conftest import ON_POSTGRES, sessions_ended

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="the loop's own pool is PostgreSQL's")


def _reads_after_a_restart(
    store: Database, pause_s: float, first_alone: bool
) -> tuple[int, list[str]]:
    """Fill the loop's pool, end its sessions, wait ``pause_s``, then read six times: at once
    (each read on a connection of its own, as under load), or one read and then five at once.
    Gives how many sessions ended, and each read's outcome."""

    async def scenario() -> tuple[int, list[str]]:
        store.open_on_this_loop()
        try:
            await asyncio.gather(*(_read(store) for _ in range(6)))  # six connections, just used
            store.dispose()  # the sessions left are the loop's pool's
            with sessions_ended(store.engine.url.database or "") as dropped:
                await asyncio.sleep(pause_s)
                first = [await _read(store)] if first_alone else []
                rest = await asyncio.gather(*(_read(store) for _ in range(6 - len(first))))
                return dropped, first + list(rest)
        finally:
            await store.close_on_this_loop()

    return anyio.run(scenario)


async def _read(store: Database) -> str:
    try:
        await store.run(cases.find_idempotent, 1, "k")
    except DBAPIError:
        return "error"
    return "ok"


def test_connections_the_server_dropped_while_they_sat_idle_are_opened_again_before_use(
    store: Database,
) -> None:
    # Longer than a connection back in the pool is trusted without a ping.
    dropped, outcomes = _reads_after_a_restart(store, pause_s=0.6, first_alone=False)
    assert dropped >= 6  # the pool's six connections, all gone
    assert outcomes == ["ok"] * 6


def test_once_a_dropped_connection_fails_a_request_the_next_ones_do_not_fail(
    store: Database,
) -> None:
    # Right after a restart, a connection used a moment ago is taken without a ping and the
    # first statement on it fails; the pool then checks every connection returned before that.
    dropped, outcomes = _reads_after_a_restart(store, pause_s=0, first_alone=True)
    assert dropped >= 6
    assert outcomes[1:] == ["ok"] * 5, outcomes
