"""Personal data on its way to the database server: sealed before it leaves the service.

A server's own logs can hold what it is sent: a statement slower than
``log_min_duration_statement`` is written there with its parameters, in full by default. So the
service sends no ID number or name in the clear, not even to be hashed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from tests.conftest import ON_POSTGRES, POSTGRES_URL, Clock, application
from tests.e2e.test_ledger import FUTIAN
from tests.e2e.test_personal_data import DIPLOMAS, PEOPLE, Keys, decide_revoke_and_bar

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has no server to send to"),
]


class Tap:
    """A TCP relay in front of the database server that keeps every byte it relays."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.relayed = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    self.relayed += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tap() -> Iterator[Tap]:
    url = make_url(POSTGRES_URL)
    relay = Tap((url.host or "127.0.0.1", url.port or 5432))
    yield relay
    relay.close()


@pytest.fixture
def database_url(database_url: str, tap: Tap) -> str:
    """The test's database (conftest's ``database_url``), reached through the tap."""
    url = make_url(database_url)
    # In the clear on loopback, so that what the tap keeps is what the server reads.
    return url.set(host="127.0.0.1", port=tap.port, query={"sslmode": "disable"}).render_as_string(
        hide_password=False
    )


async def test_the_server_is_sent_no_id_number_or_name_in_plain_text(
    api: httpx.AsyncClient, make_key: Keys, container: Container, clock: Clock, tap: Tap
) -> None:
    barred, second = await decide_revoke_and_bar(api, make_key)
    assert barred["status"] == "revoked"
    assert second["status"] == "rejected"
    # A dry run (its queries logged, no case) and a re-check of the approvals.
    channel = make_key("channel", uscc=None)
    body = application(uscc=FUTIAN, id_number="430104199608202463", name="王芳",
                       diploma_no=DIPLOMAS["430104199608202463"])  # fmt: skip
    assert (await api.post("/v1/evaluations", json=body, headers=channel)).status_code == 200
    clock.advance(days=40)
    assert (await container.rechecker.run()).summary()
    assert verify(container.database.engine).intact

    relayed = bytes(tap.relayed)
    assert len(relayed) > 50_000
    for id_number, name in PEOPLE.items():
        assert id_number.encode() not in relayed, id_number
        assert name.encode() not in relayed, name
