"""The running lab of the multi-host tests: its PCs, its lab file, and agents acting as clients on a PC."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multihost.netns import PC, Network

AGENT = Path(__file__).with_name("agent.py")
CHECK_INTERVAL = 2.0
NS_PORT = 9090

LAB_FILE = """\
nameserver: {{host: {ns}, port: {ns_port}, check_interval: {check}}}
daemons:
  bench1:
    host: {bench1}
    port: 7001
    heartbeat: 2
    services:
      lab.laser: {{class: "pyrolab_jupyter.instruments.sim:Laser"}}
  bench2:
    host: {bench2}
    advertise: {bench2}:7002
    port: 7002
    heartbeat: 2
    services:
      lab.stage:
        class: "pyrolab_jupyter.instruments.sim:Stage"
        args: {{velocity_mm_s: 500}}
"""


class Agent:
    """A Python process on one PC that runs the snippets a test sends (see agent.py)."""

    def __init__(self, pc: PC) -> None:
        self.pc = pc
        self.process = pc.popen([sys.executable, str(AGENT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name=f"agent-{pc.name}").start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put("")

    def send(self, code: str, timeout: float = 60.0) -> dict[str, Any]:
        """Run ``code`` on the PC; the answer dict (``ok``, ``result`` or ``error``/``message``, ``elapsed``)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"code": code}) + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the agent on {self.pc} gave no answer within {timeout} s to:\n{code}") from None
        if not line:
            raise AssertionError(f"the agent on {self.pc} exited (code {self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def do(self, code: str, timeout: float = 60.0) -> Any:
        """Run ``code`` and return its ``result``; a raised error fails the test with its traceback."""
        answer = self.send(code, timeout)
        assert answer["ok"], f"on {self.pc}: {answer['error']}: {answer['message']}\n{answer['traceback']}"
        return answer["result"]


@dataclass
class LabOnPCs:
    """The running lab: the network, its PCs, the lab file and each PC's ``pyrolab up`` output."""

    network: Network
    pcs: dict[str, PC]
    lab_file: Path
    outputs: dict[str, Path]
    ups: dict[str, Any]
    agents: list[Agent] = field(default_factory=list)

    @property
    def nameserver(self) -> str:
        return f"{self.pcs['ns'].address}:{NS_PORT}"

    def output(self, pc: str) -> str:
        return self.outputs[pc].read_text(encoding="utf-8", errors="replace")

    def agent(self, pc: str) -> Agent:
        agent = Agent(self.pcs[pc])
        self.agents.append(agent)
        return agent


def run_lab(network: Network, folder: Path, extra: str = "") -> LabOnPCs:
    """PCs ns, bench1, bench2, client; ``LAB_FILE`` (plus ``extra`` lines) in ``folder``, a shared
    filesystem; the same ``pyrolab up LAB.yaml`` started on the first three, each starting its own part."""
    pcs = {name: network.add(name) for name in ("ns", "bench1", "bench2", "client")}
    lab_file = folder / "lab.yaml"
    lab_file.write_text(LAB_FILE.format(ns=pcs["ns"].address, ns_port=NS_PORT, check=CHECK_INTERVAL,
                                        bench1=pcs["bench1"].address, bench2=pcs["bench2"].address) + extra)
    outputs, ups = {}, {}
    for name in ("ns", "bench1", "bench2"):
        outputs[name] = folder / f"up-output-{name}.txt"
        with outputs[name].open("w") as out:
            ups[name] = pcs[name].popen([sys.executable, "-m", "pyrolab_jupyter.cli", "up", str(lab_file)],
                                        stdout=out, stderr=subprocess.STDOUT)
    lab = LabOnPCs(network, pcs, lab_file, outputs, ups)
    for name, part in (("ns", "nameserver at"), ("bench1", "registered with"), ("bench2", "registered with")):
        wait_until(lambda: part in lab.output(name) or ups[name].poll() is not None, 60, f"up on {name}")
        assert ups[name].poll() is None, f"pyrolab up on {name} exited:\n{lab.output(name)}"
    return lab


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition()`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
