"""Subscriptions cannot stall anyone: silent subscribers, caps, and callbacks only to the subscriber's address."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from conftest import wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.publish import SubscriptionLimits
from pyrolab_jupyter.errors import AccessDenied, InvalidArgument

pytestmark = pytest.mark.network


class SilentPeer:
    """Accepts TCP connections on 127.0.0.1 and never answers; notes which ones the other side closed."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.closed_by_peer = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                pass
            else:
                conn.setblocking(False)
                self.accepted.append(conn)
            for conn in list(self.accepted):
                try:
                    if conn.recv(65536) == b"":  # the daemon gave up on us
                        self.accepted.remove(conn)
                        conn.close()
                        self.closed_by_peer += 1
                except BlockingIOError:
                    pass
                except OSError:
                    self.accepted.remove(conn)
                    self.closed_by_peer += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.server.close()


def _subscribe_raw(remote, uri: str) -> str:
    token = uuid.uuid4().hex
    remote._pyrolab_call("control", "pyrolab_subscribe", (uri, token), {})
    return token


def test_silent_subscribers_are_dropped_without_delaying_a_live_one(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    other = Lab(nameserver.address).connect("t.dummy")
    delivery = SubscriptionLimits().delivery_timeout
    silent = SilentPeer()
    try:
        tokens = [_subscribe_raw(remote, f"PYRO:pyrolab.inbox@127.0.0.1:{silent.port}") for _ in range(10)]
        seen: list[tuple[str, object, float]] = []
        subscription = remote.subscribe(lambda p, v, t: seen.append((p, v, time.monotonic())))
        lags = []
        for value in (5.0, 6.0, 7.0):
            other.set_power(value)
            sent = time.monotonic()
            wait_for(lambda value=value: any(p == "power" and v == value for p, v, _ in seen), timeout=30)
            lags.append(next(t for p, v, t in seen if p == "power" and v == value) - sent)
        # serial delivery would wait delivery_timeout per silent subscriber (30 s); each has its own thread now
        assert max(lags) < 10 * delivery / 3, lags

        def served(token: str) -> bool:
            return bool(remote._pyrolab_call("control", "pyrolab_subscribed", (token,), {}))

        wait_for(lambda: not any(served(t) for t in tokens), timeout=10 * delivery + 20)  # all dropped
        wait_for(lambda: silent.closed_by_peer >= 1 and not silent.accepted, timeout=30)  # and hung up on
        other.set_power(8.0)
        wait_for(lambda: any(p == "power" and v == 8.0 for p, v, _ in seen), timeout=30)
        time.sleep(0.5)
        assert not silent.accepted  # dropped ones are not called again
        assert served(subscription.token)
        subscription.close()
    finally:
        silent.close()


def test_a_callback_to_another_address_is_refused(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    with pytest.raises(AccessDenied, match="not the address this subscription came from"):
        _subscribe_raw(remote, "PYRO:pyrolab.inbox@127.0.0.2:9")  # refused before any connection is made
    for bad in ("not a uri", "PYRONAME:pyrolab.inbox", "PYRO:pyrolab.inbox@./u:/tmp/sock", "x" * 10_000):
        with pytest.raises(InvalidArgument):
            _subscribe_raw(remote, bad)
    with pytest.raises(InvalidArgument, match="token"):
        remote._pyrolab_call("control", "pyrolab_subscribe", ("PYRO:x@127.0.0.1:9", "t" * 1000), {})
    assert remote.echo("still serving") == "still serving"


_OTHER_PROCESS = """
import sys
from pyrolab_jupyter import Lab
sub = Lab(sys.argv[1]).connect("t.dummy").subscribe(lambda *a: None)
print("subscribed", flush=True)
sub.close()
"""


def test_subscriptions_are_capped_per_client_process_not_per_address(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    cap = SubscriptionLimits().per_client
    subscriptions = [remote.subscribe(lambda *a: None) for _ in range(cap)]
    with pytest.raises(AccessDenied, match=f"already holds {cap} subscriptions"):
        remote.subscribe(lambda *a: None)
    # another process on the same address is another client: it may still subscribe
    out = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, nameserver.address],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "subscribed", out.stderr
    subscriptions.pop().close()
    subscriptions.append(remote.subscribe(lambda *a: None))  # closing one makes room
    for subscription in subscriptions:
        subscription.close()


def test_the_daemon_wide_cap_and_a_renewed_token_replacing_its_old_subscription():
    from pyrolab_jupyter.core.publish import Publisher

    publisher = Publisher(SubscriptionLimits(per_client=10, per_daemon=3))
    uri = "PYRO:pyrolab.inbox@127.0.0.1:9"  # never called: the snapshots below are empty
    try:
        for i in range(3):
            publisher.subscribe("svc", uri, f"t{i}", f"client{i}", dict)
        with pytest.raises(AccessDenied, match="this daemon already serves 3 subscriptions"):
            publisher.subscribe("svc", uri, "t3", "client3", dict)
        publisher.subscribe("svc", uri, "t0", "client0", dict)  # the same token again: renewed, not added
        assert publisher.count() == 3 and publisher.services() == {"svc"}
        publisher.unsubscribe("t1")
        publisher.subscribe("svc", uri, "t3", "client3", dict)
        assert publisher.count() == 3
    finally:
        publisher.stop()
    assert publisher.count() == 0
