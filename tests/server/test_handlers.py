"""The REST endpoints against a real Jupyter server (pytest-jupyter) and real nameservers/daemons."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado.httpclient import HTTPClientError

from pyrolab_jupyter.core.naming import nameserver_address

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ROW_KEYS = {"name", "uri", "status", "last_seen", "class", "description", "locked_by"}


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never says a word (a hung nameserver)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def ns_address(request, nameserver) -> str:
    """The nameserver the server extension starts with: the test's real one, or a silent port."""
    if "silent_port" in request.fixturenames:
        return f"127.0.0.1:{request.getfixturevalue('silent_port')}"
    return nameserver.address


@pytest.fixture
def jp_server_config(ns_address):
    return {
        "ServerApp": {"jpserver_extensions": {"pyrolab_jupyter.server": True}},
        "PyroLabServer": {"nameserver": ns_address, "timeout": 5.0},
    }


async def _json(jp_fetch, *parts, **kwargs):
    reply = await jp_fetch("pyrolab", "api", *parts, **kwargs)
    return reply.code, json.loads(reply.body)


async def _error(jp_fetch, *parts, **kwargs):
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("pyrolab", "api", *parts, **kwargs)
    return caught.value.code, json.loads(caught.value.response.body)


async def test_services_lists_a_running_daemon(jp_fetch, nameserver, daemon_factory):
    daemon_factory({"bench.dummy": "labservices:Dummy"}, nameserver=nameserver.uri)
    code, payload = await _json(jp_fetch, "services")
    assert code == 200
    assert payload["nameserver"] == nameserver.address
    (row,) = payload["services"]
    assert set(row) == ROW_KEYS
    assert row["name"] == "bench.dummy" and row["status"] == "online"
    assert row["class"].endswith("Dummy")


async def test_without_a_token_the_answer_is_403(jp_fetch):
    for path in ("services", "config"):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("pyrolab", "api", path, headers={"Authorization": "token not-the-token"})
        assert caught.value.code == 403
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("pyrolab", "api", "config", method="PUT", headers={"Authorization": ""},
                       body=json.dumps({"nameserver": "127.0.0.1:1"}))
    assert caught.value.code == 403


async def test_a_dead_nameserver_is_a_503_naming_it(jp_fetch, nameserver):
    nameserver.kill()
    code, body = await _error(jp_fetch, "services")
    assert code == 503
    assert nameserver.address in body["message"] and "pyrolab nameserver" in body["message"]


async def test_put_switches_the_nameserver(jp_fetch, nameserver_factory, daemon_factory):
    other = nameserver_factory()
    daemon_factory({"other.dummy": "labservices:Dummy"}, nameserver=other.uri)
    code, config = await _json(jp_fetch, "config", method="PUT", body=json.dumps({"nameserver": other.address}))
    assert code == 200 and config == {"nameserver": other.address, "open_sidebar": False}
    _, payload = await _json(jp_fetch, "services")
    assert payload["nameserver"] == other.address
    assert [row["name"] for row in payload["services"]] == ["other.dummy"]
    # POST does the same
    _, config = await _json(jp_fetch, "config", method="POST", body=json.dumps({"nameserver": "127.0.0.1:1"}))
    assert config["nameserver"] == "127.0.0.1:1"


@pytest.mark.parametrize("body, status, says", [
    ("not json", 400, "not JSON"),
    ("[1, 2]", 400, '{"nameserver": "host:port"}'),
    (json.dumps({"nameserver": "http://x:1"}), 400, "not a nameserver address"),
    (json.dumps({"nameserver": ""}), 400, "empty"),
    (json.dumps({"nameserver": "x" * 10_000}), 413, "at most"),
])
async def test_a_bad_put_is_refused_clearly_and_changes_nothing(jp_fetch, nameserver, body, status, says):
    code, reply = await _error(jp_fetch, "config", method="PUT", body=body)
    assert code == status and says in reply["message"]
    _, config = await _json(jp_fetch, "config")
    assert config["nameserver"] == nameserver.address


async def test_a_silent_nameserver_is_a_504_and_does_not_block_the_server(jp_fetch, silent_port):
    slow = asyncio.ensure_future(_error(jp_fetch, "services"))
    # the server keeps answering other requests while the Pyro call waits in its executor
    code, config = await _json(jp_fetch, "config")
    assert code == 200 and config["nameserver"] == f"127.0.0.1:{silent_port}"
    assert not slow.done()
    code, body = await slow
    assert code == 504 and "did not answer within 5 s" in body["message"]


@pytest.mark.parametrize("ns_address", ["http://typo:9090"])
async def test_a_bad_configured_nameserver_leaves_the_extension_working_on_the_default(jp_fetch, ns_address):
    code, config = await _json(jp_fetch, "config")
    assert code == 200 and config["nameserver"] == nameserver_address(None)  # $PYROLAB_NAMESERVER, else the default
