"""The audit trail: records off the request path, rotation, history(), and each kind of change over sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyrolab_jupyter.cli import main
from pyrolab_jupyter.core.audit import NOTEBOOK_ANNOTATION, AuditLog, call_context, summarize
from pyrolab_jupyter.core.client import set_call_context
from pyrolab_jupyter.core.errors import InvalidArgument, ServiceLocked


def test_summarize_keeps_records_small() -> None:
    assert summarize([1.5, "x", None, True]) == [1.5, "x", None, True]
    assert summarize("a" * 1000).endswith("(1000 chars)")
    assert summarize(b"\x00" * 10) == "<10 bytes>"
    assert summarize(np.zeros((3, 4))) == "<array float64 (3, 4)>"
    assert summarize(np.float32(2.5)) == 2.5
    assert len(summarize(list(range(1000)))) == 21
    json.dumps(summarize([object(), {"k": [[[[1]]]]}]))


def test_call_context_is_bounded_and_typed() -> None:
    good = json.dumps({"notebook": "run.ipynb", "execution_count": 7}).encode()
    assert call_context({NOTEBOOK_ANNOTATION: good}) == {"notebook": "run.ipynb", "execution_count": 7}
    assert call_context({NOTEBOOK_ANNOTATION: b"x" * 5000}) == {}
    assert call_context({NOTEBOOK_ANNOTATION: b"not json"}) == {}
    assert call_context({NOTEBOOK_ANNOTATION: b'{"execution_count": true, "notebook": 3}'}) == {}
    assert call_context(None) == {}


def test_file_rotation_and_history_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "d.jsonl"
    log = AuditLog(path, max_bytes=4000, backups=3)
    for i in range(100):
        log.record("alice (pid 1)", "s" if i % 2 else "t", "set_power", "call", [i])
    log.close()
    assert path.with_name("d.jsonl.1").is_file()  # rotated
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {"time", "who", "service", "member", "kind", "args", "outcome"} <= set(lines[-1])
    with open(path, "a") as f:
        f.write('{"torn": ')  # what kill -9 in mid-write leaves
    fresh = AuditLog(path)  # a restarted daemon: memory empty, history from the files
    try:
        records = fresh.history("s", 30)
        assert [r["args"] for r in records] == [[i] for i in range(41, 100, 2)]
        assert fresh.history("s", 0) == []
    finally:
        fresh.close()


def test_record_does_not_wait_for_the_disk(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    try:
        for i in range(2000):
            log.record("who", "s", "m", "set", [i])
        log.flush()
        assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2000
    finally:
        log.close()



@pytest.mark.network
def test_every_kind_of_change_is_recorded_and_read_back(lab: Any, daemon_factory: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    daemon_factory({"t.dummy": "labservices:Dummy"}, lab.address)
    dummy = lab.connect("t.dummy")
    set_call_context(lambda: {"notebook": "scan.ipynb", "execution_count": 12})
    try:
        dummy.set_power(3.0)
    finally:
        set_call_context(None)
    dummy.power = 4.0
    dummy.echo("read-only calls are not changes")
    with pytest.raises(InvalidArgument):
        dummy.set_power(99.0)
    dummy.lock(lease=30)
    dummy.unlock()
    other = _other_process_locks(lab.address)
    with pytest.raises(ServiceLocked):
        dummy.set_power(1.0)
    assert dummy.force_unlock() is not None
    other.stdin.close()
    other.wait(10)
    other.stdout.close()

    records = dummy.history(n=50)
    kinds = [(r["kind"], r["member"], r["outcome"]) for r in records]
    assert kinds[:6] == [("call", "set_power", "ok"), ("set", "power", "ok"),
                         ("call", "set_power", "InvalidArgument"), ("lock", "lock", "ok"),
                         ("unlock", "unlock", "ok"), ("lock", "lock", "ok")]
    assert kinds[6:] == [("call", "set_power", "ServiceLocked"), ("force_unlock", "force_unlock", "ok")]
    first = records[0]
    assert first["args"] == [3.0] and first["service"] == "t.dummy"
    assert first["notebook"] == "scan.ipynb" and first["execution_count"] == 12
    assert "unverified" in first["who"] and f"pid {_pid()}" in first["who"]
    assert records[5]["who"] != first["who"]  # the other process took that lock
    assert records[0]["time"] <= records[-1]["time"]
    assert [r["kind"] for r in dummy.history(n=2)] == ["call", "force_unlock"]

    assert main(["history", "t.dummy", "--nameserver", lab.address, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[-1]["kind"] == "force_unlock"
    assert main(["history", "t.dummy", "--nameserver", lab.address, "-n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "force_unlock" in out[-1] and "ServiceLocked" in out[-2]


def _pid() -> int:
    import os

    return os.getpid()


def _other_process_locks(address: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import sys
        from pyrolab_jupyter import Lab
        Lab({address!r}, timeout=10).connect("t.dummy").lock(lease=60)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.network
def test_kill_minus_9_keeps_what_was_recorded_100_ms_before(lab: Any, tmp_path: Path) -> None:
    import time

    from pyrolab_jupyter import start_daemon

    path = tmp_path / "bench.audit.jsonl"
    handle = start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=lab.address, spawn=True, audit=str(path))
    try:
        dummy = lab.connect("t.dummy")
        for i in range(50):
            dummy.set_power(float(i % 40))
        time.sleep(0.15)
        handle.process.kill()  # kill -9: no atexit, no flush
        handle.process.wait(10)
    finally:
        handle.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["args"] for r in lines] == [[float(i % 40)] for i in range(50)]


def test_the_writers_json_lines_are_what_json_dumps_writes() -> None:
    from decimal import Decimal

    from pyrolab_jupyter.core.audit import _json_lines

    line = _json_lines()
    for entry in [
        {"time": 1764500000.25, "who": "ädä@pc (pid 1)", "service": "s", "member": "m", "kind": "call",
         "args": [1, 2.5, None, True, "x\ny", {"k": [1, {"n": float("nan")}]}], "outcome": "ok"},
        {"time": 1.0, "who": "w", "args": [Decimal("1.5"), object.__name__], "error": "ValueError: 'bad'"},
    ]:
        assert line(entry) == json.dumps(entry, default=str)
