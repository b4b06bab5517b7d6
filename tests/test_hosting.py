"""Building services from specs, and start_daemon's argument checks (spawned daemons are covered in tests/core)."""

from __future__ import annotations

import pytest
from labservices import Dummy

from pyrolab_jupyter.errors import ConfigError
from pyrolab_jupyter.hosting import build_service, import_class, start_daemon


def test_spec_forms():
    service, description = build_service("a", {"class": "labservices:Dummy", "args": {"power": 2.0},
                                               "description": "bench dummy", "thread_safe": True})
    assert isinstance(service, Dummy) and service.power == 2.0 and service.thread_safe
    assert description == "bench dummy"
    assert not Dummy.thread_safe, "the class default is untouched"
    assert build_service("b", "labservices:Dummy")[1] is None
    instance = Dummy()
    assert build_service("c", instance) == (instance, None)


@pytest.mark.parametrize("spec, message", [
    ("labservices", "expected 'package.module:ClassName'"),
    ("nosuch.module:Thing", "cannot import 'nosuch.module:Thing'"),
    ("labservices:Dumy", "did you mean 'Dummy'"),
    ({"class": "labservices:Dummy", "args": {"watts": 1}}, "cannot construct labservices:Dummy"),
    ("labservices:Mode", "cannot construct labservices:Mode"),  # any class is served, if it constructs
    ({"args": {}}, "mapping with 'class'"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_service("lab.x", spec)


def test_import_class_refuses_non_classes():
    with pytest.raises(ConfigError, match="is not a class"):
        import_class("labservices:time")


def test_start_daemon_argument_checks():
    with pytest.raises(ValueError, match="at least one service"):
        start_daemon({})
    with pytest.raises(ValueError, match="spawn=True needs"):
        start_daemon({"x": Dummy()}, spawn=True)
