"""The members a ``RemoteService`` is made of: methods as real functions, properties with docs, Futures that stop.

A remote method is a plain function carrying the signature and docstring its
service published (units, ranges), so IPython's ``?`` shows one clean
signature and Tab completion never calls the instrument; a remote property is
a real ``property`` on the service object's own class, so ``remote.power?``
shows its doc without reading it. ``submit()`` runs a call in the background
and returns a ``RemoteFuture`` whose ``cancel()`` invokes the stop action.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from pyrolab_jupyter.core.errors import RemoteError
from pyrolab_jupyter.core.signatures import method_doc, property_doc, signature_of

if TYPE_CHECKING:
    from pyrolab_jupyter.core.client import RemoteService

__all__ = ["RemoteFuture", "RemoteMethod", "remote_method", "remote_property", "stop_method"]

log = logging.getLogger(__name__)


def stop_method(description: dict[str, Any]) -> str | None:
    """The name of the service's stop action (``expose(stop=True)``) in its description, if it has one.

    A panel's Stop button calls it like any method: the daemon lets anyone do
    that, locked or not, also while another call runs.
    """
    return next((n for n, d in description.get("methods", {}).items() if d.get("stop")), None)


class RemoteMethod(Protocol):
    """A remote method: a plain function with the signature and docstring its service published.

    Being a real function, IPython's ``?`` shows one clean signature and the
    doc (units, ranges), and Tab never calls the instrument.
    """

    __signature__: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def submit(self, *args: Any, **kwargs: Any) -> Future[Any]:
        """Start the call in the background; ``cancel()`` on the Future invokes the service's stop action."""
        ...

    def call_with(self, arguments: dict[str, Any]) -> Any:
        """Call with the keyword arguments a form gathered; a method taking any arguments gets ``args`` spread."""
        ...


def remote_method(service: RemoteService, name: str, description: dict[str, Any]) -> RemoteMethod:
    def call(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # noqa: F841 (IPython hides this frame)
        return service._pyrolab_call("call", name, args, kwargs)

    def submit(*args: Any, **kwargs: Any) -> Future[Any]:
        return service._pyrolab_submit(name, args, kwargs)

    call.__name__ = name
    call.__qualname__ = f"{service._pyrolab_name}.{name}"
    call.__doc__ = method_doc(name, description)
    call.__signature__ = signature_of(description)  # type: ignore[attr-defined]
    submit.__name__ = f"{name}.submit"
    submit.__doc__ = f"Start {name}() on the daemon and return a concurrent.futures.Future at once."
    def call_with(arguments: dict[str, Any]) -> Any:
        if call.__signature__.parameters.keys() == {"args", "kwargs"} and arguments.keys() <= {"args"}:  # type: ignore[attr-defined]
            return call(*(arguments.get("args") or ()))
        return call(**arguments)

    call.submit = submit  # type: ignore[attr-defined]
    call.call_with = call_with  # type: ignore[attr-defined]
    method: RemoteMethod = call  # type: ignore[assignment]
    return method


def remote_property(service_name: str, name: str, description: dict[str, Any]) -> property:
    def fget(self: RemoteService) -> Any:
        __tracebackhide__ = True  # noqa: F841
        try:
            return self._pyrolab_call("get", name, (), {})
        except AttributeError as err:  # else Python would retry through __getattr__ and hide it
            raise RemoteError(f"reading {service_name}.{name} raised AttributeError: {err}") from None

    def fset(self: RemoteService, value: Any) -> None:
        __tracebackhide__ = True  # noqa: F841
        if description.get("readonly"):
            raise AttributeError(f"{service_name}.{name} is read-only")
        self._pyrolab_call("set", name, (value,), {})

    return property(fget, fset, None, property_doc(name, description))


class RemoteFuture(Future[Any]):
    """A Future whose ``cancel()`` also stops a call already running, through the service's stop action."""

    def __init__(self, stop: Callable[[], Any] | None) -> None:
        super().__init__()
        self._pyrolab_stop = stop
        self._pyrolab_deciding = threading.Lock()  # the call's end waits while cancel() stops it

    def cancel(self) -> bool:
        if super().cancel():  # not started yet: it never will
            return True
        with self._pyrolab_deciding:
            if self._pyrolab_stop is None or not self.running():
                return self.cancelled()  # finished, or no stop action to end it with
            try:
                self._pyrolab_stop()
            except Exception as err:
                log.warning("cancel(): the stop action failed: %s", err)
                return False
            with self._condition:
                self._state = "CANCELLED_AND_NOTIFIED"
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True

    def run(self, action: Callable[[], Any]) -> None:
        """Run ``action`` on this (worker) thread and settle the Future, unless cancel() settled it first."""
        if not self.set_running_or_notify_cancel():
            return
        try:
            result = action()
        except BaseException as err:
            with self._pyrolab_deciding:
                if not self.cancelled():
                    self.set_exception(err)
            return
        with self._pyrolab_deciding:
            if not self.cancelled():
                self.set_result(result)
