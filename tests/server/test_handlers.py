"""The REST endpoints in a real Jupyter server process, against real nameserver and daemon processes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from conftest import JupyterProcess

from pyrolab_jupyter.core.naming import DEFAULT_NAMESERVER

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

ROW_KEYS = {"name", "uri", "status", "last_seen", "class", "description", "locked_by"}
SERVICES = "/pyrolab/api/services"
CONFIG = "/pyrolab/api/config"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterProcess]:
    """One server for the tests that point it at their nameserver with PUT (starting one costs seconds)."""
    server = JupyterProcess(tmp_path_factory.mktemp("jupyter"), ("--PyroLabServer.timeout=5",)).start()
    yield server
    server.stop()


def _use(jupyter: JupyterProcess, address: str) -> dict:
    status, config = jupyter.request("PUT", CONFIG, json.dumps({"nameserver": address}))
    assert status == 200, config
    return config


def test_the_configured_nameserver_s_services_are_listed(jupyter_factory, nameserver, daemon_factory):
    daemon_factory({"bench.dummy": "labservices:Dummy"}, nameserver=nameserver.uri)
    server = jupyter_factory(f"--PyroLabServer.nameserver={nameserver.address}")
    status, payload = server.request("GET", SERVICES)
    assert status == 200
    assert payload["nameserver"] == nameserver.address
    (row,) = payload["services"]
    assert set(row) == ROW_KEYS
    assert row["name"] == "bench.dummy" and row["status"] == "online" and row["class"].endswith("Dummy")


def test_a_bad_configured_nameserver_leaves_the_extension_on_the_default(jupyter_factory):
    server = jupyter_factory("--PyroLabServer.nameserver=http://typo:9090")
    assert server.request("GET", CONFIG) == (200, {"nameserver": DEFAULT_NAMESERVER, "open_sidebar": False})
    assert "c.PyroLabServer.nameserver" in server.log.read_text()  # and the log says why


def test_without_the_token_the_answer_is_403(jupyter):
    for method, path, body in (("GET", SERVICES, None), ("GET", CONFIG, None),
                               ("PUT", CONFIG, json.dumps({"nameserver": "127.0.0.1:1"}))):
        status, _ = jupyter.request(method, path, body, token="not-the-token")
        assert status == 403, (method, path)
    assert jupyter.request("GET", CONFIG)[1]["nameserver"] != "127.0.0.1:1"  # the refused PUT changed nothing


def test_put_and_post_switch_the_nameserver(jupyter, nameserver_factory, daemon_factory):
    first, second = nameserver_factory(), nameserver_factory()
    daemon_factory({"other.dummy": "labservices:Dummy"}, nameserver=second.uri)
    assert _use(jupyter, first.address) == {"nameserver": first.address, "open_sidebar": False}
    assert jupyter.request("GET", SERVICES) == (200, {"nameserver": first.address, "services": []})
    status, config = jupyter.request("POST", CONFIG, json.dumps({"nameserver": second.address}))
    assert status == 200 and config["nameserver"] == second.address
    status, payload = jupyter.request("GET", SERVICES)
    assert [row["name"] for row in payload["services"]] == ["other.dummy"]


def test_a_dead_nameserver_is_a_503_naming_it(jupyter, nameserver):
    _use(jupyter, nameserver.address)
    assert jupyter.request("GET", SERVICES)[0] == 200
    nameserver.kill()
    status, body = jupyter.request("GET", SERVICES)
    assert status == 503
    assert nameserver.address in body["message"] and "pyrolab nameserver" in body["message"]


def test_a_bad_put_is_refused_clearly_and_changes_nothing(jupyter):
    _use(jupyter, "127.0.0.1:9999")
    for body, expected, says in (
        ("not json", 400, "not JSON"),
        ("[1, 2]", 400, '{"nameserver": "host:port"}'),
        (json.dumps({"address": "127.0.0.1:1"}), 400, '{"nameserver": "host:port"}'),
        (json.dumps({"nameserver": "http://x:1"}), 400, "not a nameserver address"),
        (json.dumps({"nameserver": ""}), 400, "empty"),
        (json.dumps({"nameserver": 9090}), 400, "not a nameserver address"),
        (json.dumps({"nameserver": "x" * 10_000}), 413, "at most"),
    ):
        status, reply = jupyter.request("PUT", CONFIG, body)
        assert (status, says in reply["message"]) == (expected, True), (body[:40], status, reply)
    assert jupyter.request("GET", CONFIG)[1]["nameserver"] == "127.0.0.1:9999"


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A listening socket that accepts connections and never says a word (a hung nameserver)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(60)
        yield sock


def test_a_silent_nameserver_is_a_504_and_does_not_block_the_server(jupyter, silent):
    _use(jupyter, f"127.0.0.1:{silent.getsockname()[1]}")
    slow: list[tuple[int, object]] = []
    asking = threading.Thread(target=lambda: slow.append(jupyter.request("GET", SERVICES)))
    asking.start()
    conn, _ = silent.accept()  # the server's Pyro call has connected and now waits for an answer...
    try:
        # ...and meanwhile the server answers other requests: the call waits in an executor, not on the loop
        for _ in range(3):
            assert jupyter.request("GET", CONFIG)[0] == 200
        assert not slow, "the services request finished before the others: it was not waiting"
    finally:
        asking.join(60)
        conn.close()
    ((status, body),) = slow
    assert status == 504 and "did not answer within 5 s" in body["message"]
