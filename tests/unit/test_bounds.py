"""Bounded connections: beyond the cap, connections are turned away."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tori_ingest.core.settings import Settings
from tori_ingest.http import ws
from tori_ingest.http.app import build_api
from tori_ingest.http.context import Context


def test_connections_beyond_the_cap_are_turned_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "_open_connections", ws.MAX_CONNECTIONS)
    app = build_api(Context(Settings.load({}), None, None))  # type: ignore[arg-type]
    with TestClient(app) as client, client.websocket_connect("/ws") as socket_:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket_.receive_text()
        assert closed.value.code == ws.CLOSE_TRY_LATER
