"""A test's hands on another PC: runs Python snippets sent on stdin, answers one JSON line each.

Each request is one JSON line ``{"code": "..."}``; the snippet runs in one
namespace kept for the agent's life (so connections, locks and subscriptions
persist between requests) and may set ``result``. The answer is
``{"ok": true, "result": ..., "elapsed": s}`` or ``{"ok": false, "error":
"ServiceOffline", "message": "...", "elapsed": s}``. Time stamps use
``time.monotonic()``, which every process of the machine shares.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any


def main() -> None:
    namespace: dict[str, Any] = {"__name__": "agent"}
    exec("import time\nfrom pyrolab_jupyter import Lab, errors", namespace)  # noqa: S102 (a test tool)
    for line in sys.stdin:
        request = json.loads(line)
        namespace.pop("result", None)
        start = time.monotonic()
        try:
            exec(request["code"], namespace)  # noqa: S102
            answer = {"ok": True, "result": namespace.get("result")}
        except Exception as err:  # the test asserts on the kind and the message
            answer = {"ok": False, "error": type(err).__name__, "message": str(err),
                      "traceback": traceback.format_exc()}
        answer["elapsed"] = time.monotonic() - start
        print(json.dumps(answer, default=repr), flush=True)


if __name__ == "__main__":
    main()
