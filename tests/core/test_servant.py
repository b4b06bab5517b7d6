"""What the daemon refuses to host: services that would be hidden behind RemoteService's own API."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.core.servant import make_servant
from pyrolab_jupyter.core.service import Service, expose


class Clashing(Service):
    @expose
    def read(self) -> float:  # fine: an instrument's read() is not shadowed
        return 1.0

    @expose
    def lock(self) -> None: ...


def test_reserved_client_names_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="exposes lock, reserved for the client's own API"):
        make_servant("x", Clashing(), host=None)  # type: ignore[arg-type]
