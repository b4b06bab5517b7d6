"""Readable summaries: the services table of `pyrolab ls` and `%pyrolab ls`, and the HTML views."""

from __future__ import annotations

import time

from pyrolab_jupyter.core.summary import ago, service_html, services_html, services_text

ROW = {"name": "lab.laser", "uri": "PYRO:lab.laser@127.0.0.1:4000", "status": "offline",
       "last_seen": None, "class": "sim:Laser", "description": "<b>bench</b>", "locked_by": "a@pc (pid 1)"}


def test_services_text_columns():
    lines = services_text([ROW]).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "LAST", "SEEN", "LOCKED", "BY", "CLASS", "ADDRESS"]
    assert lines[1].split()[:3] == ["lab.laser", "offline", "-"]
    assert lines[1].endswith("127.0.0.1:4000")


def test_ago():
    assert ago(None) == "-"
    assert ago(time.time() - 5) == "5 s ago"
    assert ago(time.time() - 600) == "10 min ago"
    assert ago("not a date") == "not a date"


def test_html_escapes_and_marks_rows():
    page = services_html([ROW], "127.0.0.1:9090")
    assert 'data-service="lab.laser" data-status="offline"' in page
    assert "<b>bench</b>" not in page and "&lt;b&gt;bench&lt;/b&gt;" in page
    description = {"class": "sim:Laser", "description": "A laser.", "locked_by": "a@pc (pid 1)",
                   "properties": {"power": {"readonly": True, "schema": {"x-unit": "mW"}, "description": ""}},
                   "methods": {"set_power": {"parameters": {"properties": {"mw": {}}}, "description": ""}}}
    view = service_html("lab.laser", description)
    assert "locked by a@pc (pid 1)" in view and "set_power(mw)" in view and "mW" in view
