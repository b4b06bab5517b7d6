"""Remote errors as people read them: the traceback ends at this library's call, then the service's own frames.

Pyro5 re-raises a remote exception from deep inside its client (the last line
reads "if you see this in your traceback..."); those frames say nothing about
the instrument. They are dropped, and a note names the daemon-side frames in
the service's own code; the whole daemon-side text stays in ``.remote_traceback``.
"""

from __future__ import annotations

import re

__all__ = ["service_frames", "with_remote_traceback"]

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+, in .*$')
_NOT_SERVICE_CODE = ("/Pyro5/", "/pyrolab_jupyter/core/", "\\Pyro5\\", "\\pyrolab_jupyter\\core\\")


def service_frames(text: str) -> str:
    """The daemon-side frames in the service's own code (Pyro5's and this library's left out)."""
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        match = _FRAME.match(line)
        if match and not any(part in match.group("file") for part in _NOT_SERVICE_CODE):
            kept.append(line)
            if i + 1 < len(lines) and lines[i + 1].startswith("    "):
                kept.append(lines[i + 1])
    return "\n".join(kept)


def with_remote_traceback(err: Exception, where: str) -> Exception:
    """Drop the Pyro5 frames (the traceback ends at this library's call) and note where the daemon raised it."""
    lines = getattr(err, "_pyroTraceback", None)
    if lines and not getattr(err, "remote_traceback", ""):
        err.remote_traceback = "".join(lines)  # type: ignore[attr-defined]
    remote = str(getattr(err, "remote_traceback", "") or "")
    if remote and not getattr(err, "_pyrolab_noted", False):
        frames = service_frames(remote)
        err._pyrolab_noted = True  # type: ignore[attr-defined]
        err.add_note(f"raised by {where} on its daemon" + (f", in:\n{frames}" if frames else "")
                     + "\n(the full daemon-side traceback is in .remote_traceback)")
    return err.with_traceback(None)
