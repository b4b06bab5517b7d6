"""Thin REST handlers over ``LabManager``: each specific error gets its own status, never a blanket 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from Pyro5.errors import PyroError

from pyrolab_jupyter.core.errors import CallTimeout, ConfigError, NameserverUnreachable, PyroLabError
from pyrolab_jupyter.server.manager import LabManager

__all__ = ["ConfigHandler", "ServicesHandler", "setup_handlers"]

MANAGER_KEY = "pyrolab_manager"
MAX_BODY = 4096  # bytes: a nameserver address needs far less


class _Base(APIHandler):
    """Fetches the manager and turns the manager's errors into statuses."""

    manager: LabManager

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler.prepare itself
        await super().prepare()
        self.manager = self.settings[MANAGER_KEY]

    def _fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"message": message}))

    async def _ask(self, work: Callable[[], Any]) -> Any:
        """Run a blocking Pyro5 call off the event loop, with a deadline of its own."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.manager.executor, work)
        return await asyncio.wait_for(future, self.manager.timeout + 2.0)


class ServicesHandler(_Base):
    """``GET /pyrolab/api/services``: the nameserver's services, as ``lab.services()`` lists them."""

    @tornado.web.authenticated
    async def get(self) -> None:
        where = f"the nameserver at {self.manager.nameserver}"
        try:
            payload = await self._ask(self.manager.services)
        except NameserverUnreachable as err:
            self._fail(503, str(err))
        except (CallTimeout, asyncio.TimeoutError):
            self._fail(504, f"{where} did not answer within {self.manager.timeout:g} s; "
                            "is it overloaded, or is a firewall dropping packets?")
        except (PyroLabError, PyroError) as err:
            self._fail(502, f"{where} answered with an error: {err}")
        else:
            self.finish(json.dumps(payload))


class ConfigHandler(_Base):
    """``GET/PUT/POST /pyrolab/api/config``: which nameserver the sidebar shows, and whether it opens at start.

    PUT or POST ``{"nameserver": "host:port"}`` switches the nameserver; the answer is the new config.
    """

    def _config(self) -> str:
        return json.dumps({"nameserver": self.manager.nameserver, "open_sidebar": self.manager.open_sidebar})

    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(self._config())

    @tornado.web.authenticated
    def put(self) -> None:
        if len(self.request.body) > MAX_BODY:
            return self._fail(413, f"the request body is {len(self.request.body)} bytes; "
                                   f"send at most {MAX_BODY}: {{\"nameserver\": \"host:port\"}}")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError as err:
            return self._fail(400, f"the request body is not JSON ({err}); send {{\"nameserver\": \"host:port\"}}")
        if not isinstance(body, dict) or "nameserver" not in body:
            return self._fail(400, "send {\"nameserver\": \"host:port\"}")
        try:
            self.manager.set_nameserver(body["nameserver"])
        except ConfigError as err:
            return self._fail(400, str(err))
        self.finish(self._config())

    post = put


def setup_handlers(web_app: tornado.web.Application, manager: LabManager) -> None:
    """Route ``/pyrolab/api/...`` under the server's base URL to the handlers."""
    web_app.settings[MANAGER_KEY] = manager
    base = url_path_join(web_app.settings["base_url"], "pyrolab", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "services"), ServicesHandler),
        (url_path_join(base, "config"), ConfigHandler),
    ])
