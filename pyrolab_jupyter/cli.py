"""The ``pyrolab`` command (also ``pyrolab-jupyter``): nameserver, daemon, up, ps, logs, reload, down, ls, check,
replay and demo.

Each subcommand is thin: it parses its options and calls ``hosting``,
``supervisor``, ``upctl``, ``labcheck`` or the client. ``main(argv=None)`` returns the
exit code, so tests call it directly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyrolab_jupyter import control, serving, supervisor, upctl
from pyrolab_jupyter.coexist import help_note, version_report
from pyrolab_jupyter.core.client import Lab
from pyrolab_jupyter.core.config import ServiceConfig
from pyrolab_jupyter.core.errors import ConfigError, NameserverUnreachable, PyroLabError
from pyrolab_jupyter.core.naming import ENV_NAMESERVER, nameserver_addresses
from pyrolab_jupyter.core.security import env_security
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.core.summary import services_text
from pyrolab_jupyter.instruments.replay import write_device
from pyrolab_jupyter.upctl import fail as _fail
from pyrolab_jupyter.upctl import load_checked as _load_checked

__all__ = ["main"]

_RAW = argparse.RawDescriptionHelpFormatter


# --- nameserver / daemon ------------------------------------------------------------------------


def _cmd_nameserver(args: argparse.Namespace) -> int:
    serving.configure_child_logging()
    try:
        return serving.serve_nameserver(args.host, args.port, args.check_interval, args.on_offline,
                                        args.storage, max_message=_bytes(args.max_message_mb),
                                        security=env_security())
    except (ConfigError, OSError, ValueError) as err:
        return _fail(str(err))


def _cmd_daemon(args: argparse.Namespace) -> int:
    try:
        ctor_args = json.loads(args.args) if args.args else {}
    except json.JSONDecodeError as err:
        return _fail(f"--args is not JSON ({err}); e.g. --args '{{\"wavelength_nm\": 1550}}'", 2)
    if not isinstance(ctor_args, dict):
        return _fail("--args must be a JSON object of keyword arguments, e.g. '{\"port\": \"COM3\"}'", 2)
    serving.configure_child_logging()
    try:
        nameserver = nameserver_addresses(args.nameserver)  # several: it registers with each
        spec = ServiceConfig(class_path=args.class_path, args=ctor_args, description=args.description or "",
                             adapter=args.adapter)  # the lab file's own model: one path for both
        return serving.serve_daemon({args.name: spec}, nameserver, args.host, args.port, args.heartbeat,
                                    max_message=_bytes(args.max_message_mb), advertise=args.advertise,
                                    security=env_security(), audit=args.audit)
    except (ConfigError, OSError, ValueError) as err:
        return _fail(str(err))


# --- up / check ---------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    lab = _load_checked(args.lab)
    if lab is None:
        return 1
    services = sum(len(d.services) for d in lab.daemons.values())
    ns = f"external nameserver {lab.nameserver.address}" if lab.nameserver.external else \
        f"nameserver {lab.nameserver.address}"
    print(f"{args.lab}: ok ({ns}, {len(lab.daemons)} daemon{'s' * (len(lab.daemons) != 1)}, "
          f"{services} service{'s' * (services != 1)})")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    if _load_checked(args.lab) is None:
        return 1
    prepared = upctl.prepare(args.lab, args.as_parts or (), args.logs)
    if isinstance(prepared, tuple):
        return _fail(*prepared)
    lab = prepared.lab
    if prepared.own_ns and supervisor.answers(lab.nameserver.address):
        return _fail(f"{args.lab}: something already listens at {lab.nameserver.address}; stop it, choose "
                     f"another nameserver port, or write 'nameserver: {lab.nameserver.address}' to use it as is")
    if args.detach and not control.AVAILABLE:
        return _fail("--detach needs Unix sockets for `pyrolab ps/down`, which this Python lacks; run `pyrolab up` "
                     "as a service instead (README: Running a lab in the background)", 2)
    if args.detach:
        return upctl.detach(args, prepared)
    sup = supervisor.Supervisor(prepared.children, prepared.logs,
                                wait_for=lab.nameserver.address if prepared.own_ns else None,
                                own_log=prepared.own_log,
                                console=open(os.devnull, "w", encoding="utf-8") if args.no_console else None)
    lab_path = str(Path(args.lab).resolve())
    server = control.ControlServer(prepared.logs / f"{prepared.own_log}.json", lab_path,
                                   [c.name for c in prepared.children],
                                   lambda request: upctl.control_handler(sup, request, args))
    try:
        if control.AVAILABLE:
            server.start()
        else:
            prepared.notes.append("no Unix sockets here: `pyrolab ps/reload/down` cannot reach this supervisor")
    except OSError as err:
        return _fail(str(err))
    try:
        for note in prepared.notes:  # on the console and in this PC's own up log
            sup.say(note)
        return sup.run()
    finally:
        server.close()


# --- ls -----------------------------------------------------------------------------------------


def _cmd_ls(args: argparse.Namespace) -> int:
    try:
        lab = Lab(args.nameserver, timeout=args.timeout, security=env_security())
        rows = lab.services()
    except ConfigError as err:
        return _fail(str(err), 2)
    except NameserverUnreachable as err:  # its message names the address and what to do
        return _fail(str(err))
    except (PyroLabError, OSError) as err:
        return _fail(f"cannot list services from the nameserver at {', '.join(lab.addresses)}: {err}")
    if args.json:
        print(json.dumps({"nameserver": ", ".join(lab.addresses), "services": rows}))
    elif not rows:
        print(f"no services registered at {', '.join(lab.addresses)}")
    else:
        print(services_text(rows))
    return 0


# --- history ------------------------------------------------------------------------------------


def _history_line(record: dict[str, object]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("time") or 0)))  # type: ignore[arg-type]
    args = json.dumps(record.get("args"), default=str)
    cell = ""
    if record.get("notebook"):
        cell = f"  [{record['notebook']}:{record.get('execution_count', '?')}]"
    return f"{when}  {record.get('who')}  {record.get('kind')} {record.get('member')} {args} -> " \
           f"{record.get('outcome')}{cell}"


def _cmd_history(args: argparse.Namespace) -> int:
    try:
        lab = Lab(args.nameserver, timeout=args.timeout, security=env_security())
        records = lab.connect(args.name).history(args.n)
    except ConfigError as err:
        return _fail(str(err), 2)
    except (PyroLabError, OSError) as err:
        return _fail(f"cannot read the history of {args.name}: {err}")
    if args.json:
        print(json.dumps(records, default=str))
    elif not records:
        print(f"no recorded changes of {args.name}")
    else:
        print("\n".join(_history_line(r) for r in records))
    return 0


# --- certs --------------------------------------------------------------------------------------


def _cmd_certs(args: argparse.Namespace) -> int:
    from pyrolab_jupyter import certs  # needs cryptography only here

    try:
        if args.certs_command == "init":
            path = certs.make_ca(args.dir, force=args.force)
            print(f"lab CA: {path} (its key {path.with_name(certs.CA_KEY)} stays private: it signs every certificate)")
        else:
            cert, key = certs.make_cert(args.dir, args.name, args.role, out=args.out, force=args.force)
            print(f"{args.role} certificate for {args.name}: {cert} (key {key}, readable by you only)")
    except (OSError, ValueError) as err:
        return _fail(str(err))
    return 0


# --- replay -------------------------------------------------------------------------------------


def _cmd_replay(args: argparse.Namespace) -> int:
    try:
        replay = write_device(args.sessions, args.output)
    except ConfigError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"cannot write {args.output}: {err.strerror or err}")
    for note in replay.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.output}: {replay.summary()}; use it as backend=\"{args.output}@sim\"")
    return 0


# --- demo ---------------------------------------------------------------------------------------


def _run_demo(argv: list[str]) -> int:
    """Forward to ``pyrolab_jupyter.demo.main``; imported only here because it pulls in Jupyter."""
    try:
        demo = importlib.import_module("pyrolab_jupyter.demo")
    except ModuleNotFoundError as err:
        if err.name != "pyrolab_jupyter.demo":
            return _fail(f"pyrolab demo needs the Jupyter extras ({err}); pip install 'pyrolab-jupyter[jupyter]'")
        return _fail("pyrolab demo is not available in this installation")
    return int(demo.main(argv) or 0)


# --- the parser ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrolab", formatter_class=_RAW,  # also installed as pyrolab-jupyter: PyroLab has a `pyrolab` too
        description="Run a lab's nameserver and daemons, and see what they serve.",
        epilog="examples:\n"
               "  pyrolab up lab.yaml                  # everything in a lab file, supervised\n"
               "  pyrolab ls                           # what the nameserver knows\n"
               "  pyrolab check lab.yaml               # validate a lab file\n"
               "  pyrolab replay s.jsonl -o dev.yaml   # a recorded instrument, as a pyvisa-sim device\n"
               "  pyrolab nameserver --port 9090\n"
               "  pyrolab daemon pyrolab_jupyter.instruments.sim:Laser --name lab.laser\n\n"
               f"Without --nameserver, commands use ${ENV_NAMESERVER}, else 127.0.0.1:9090.\n"
               f"With $PYROLAB_CERT, $PYROLAB_KEY and $PYROLAB_CA set, every command speaks mutual TLS.{help_note()}")
    parser.add_argument("--version", action="store_true",
                        help="print the version and whose `pyrolab` command this environment has (PyroLab's?)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("nameserver", formatter_class=_RAW, help="run a nameserver in the foreground",
                       description="Run a nameserver with its health monitor until Ctrl-C.",
                       epilog="examples:\n  pyrolab nameserver\n"
                              "  pyrolab nameserver --host 0.0.0.0 --port 9090 --check-interval 2\n"
                              "  pyrolab nameserver --on-offline remove --storage sql:names.sqlite")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=SETTINGS.nameserver_port,
                   help=f"port (default {SETTINGS.nameserver_port}; 0 picks a free one)")
    p.add_argument("--check-interval", type=float, default=SETTINGS.check_interval, metavar="S",
                   help=f"seconds between health checks of every daemon (default {SETTINGS.check_interval:g})")
    p.add_argument("--on-offline", choices=("keep", "remove"), default="keep",
                   help="keep a vanished service's entry marked offline, or remove it (default keep)")
    p.add_argument("--storage", default="memory", help="'memory' (default) or 'sql:PATH'")
    _max_message_option(p)
    p.set_defaults(handler=_cmd_nameserver)

    p = sub.add_parser("daemon", formatter_class=_RAW, help="host one service in the foreground",
                       description="Host one service and register it with a nameserver until Ctrl-C. "
                                   "If the nameserver is not up yet, the daemon keeps retrying.",
                       epilog="examples:\n"
                              "  pyrolab daemon pyrolab_jupyter.instruments.sim:Laser --name lab.laser\n"
                              "  pyrolab daemon mylab.stage:Stage --name bench1.stage --nameserver 10.0.0.5:9090 "
                              "\\\n      --host 0.0.0.0 --args '{\"axis\": \"x\"}'\n"
                              "  pyrolab daemon qcodes.instrument_drivers.yokogawa:YokogawaGS200 --name bench1.gs200 "
                              "\\\n      --args '{\"name\": \"gs200\", \"address\": \"GPIB::1::INSTR\"}'")
    p.add_argument("class_path", metavar="MODULE:CLASS",
                   help="the class to host: a Service, or any driver class (served through an adapter)")
    p.add_argument("--name", required=True, help="the service's name at the nameserver")
    p.add_argument("--nameserver", metavar="HOST:PORT[,...]",
                   help=f"one or several, comma-separated (default ${ENV_NAMESERVER}, else 127.0.0.1:9090)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--heartbeat", type=float, default=SETTINGS.heartbeat, metavar="S",
                   help=f"seconds between re-registrations (default {SETTINGS.heartbeat:g})")
    p.add_argument("--advertise", metavar="HOST[:PORT]",
                   help="address clients reach it at (NAT, forwarded port); default: --host, or for 0.0.0.0 "
                        "the interface that routes to the nameserver")
    p.add_argument("--args", metavar="JSON", help="constructor keyword arguments as a JSON object")
    p.add_argument("--description", help="one line shown in listings")
    p.add_argument("--audit", metavar="FILE", help="JSON-lines audit trail of every change (default: in memory)")
    p.add_argument("--adapter", metavar="NAME",
                   help="adapter for a class that is not a Service: qcodes, pymeasure, pyrolab, plain or a "
                        "plug-in's name (default: the first that claims it)")
    _max_message_option(p)
    p.set_defaults(handler=_cmd_daemon)

    p = sub.add_parser("up", formatter_class=_RAW, help="run every process of a lab file, supervised",
                       description="Start this PC's part of the lab file (the nameserver and daemons whose "
                                   "host: is one of its addresses), each in its own process; restart any that "
                                   "dies; Ctrl-C stops them all (twice: kill).",
                       epilog="examples:\n  pyrolab up lab.yaml\n  pyrolab up lab.yaml --logs /var/log/pyrolab\n"
                              "  pyrolab up lab.yaml --as bench2   # that part, whatever its host:")
    p.add_argument("lab", metavar="LAB.yaml")
    p.add_argument("--as", dest="as_parts", action="append", metavar="NAME",
                   help="start this part (nameserver or a daemon) whatever its host; repeatable. "
                        "Default: the parts whose host is one of this PC's addresses")
    p.add_argument("--logs", metavar="DIR", help="log folder (default: the file's 'logs:' or logs/ beside it)")
    p.add_argument("--no-console", action="store_true", help=argparse.SUPPRESS)  # a detached up's own flag
    p.add_argument("--detach", action="store_true",
                   help="run the supervisor in the background (state and logs in the logs folder); "
                        "then: pyrolab ps / logs / reload / down LAB.yaml")
    p.set_defaults(handler=_cmd_up)

    def lab_command(name: str, help_: str, description: str, handler: Any, examples: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, formatter_class=_RAW, help=help_, description=description,
                           epilog="examples:\n" + examples)
        q.add_argument("lab", metavar="LAB.yaml")
        q.add_argument("--logs", metavar="DIR", help="the logs folder `up` was given with --logs")
        q.set_defaults(handler=handler)
        return q

    q = lab_command("ps", "the processes of a running `pyrolab up`",
                    "Each process of this PC's running `pyrolab up` of LAB.yaml: name, pid, state, restarts, "
                    "uptime, port.", upctl.cmd_ps, "  pyrolab ps lab.yaml\n  pyrolab ps lab.yaml --json")
    q.add_argument("--json", action="store_true", help='print {"supervisors": [pid], "processes": [...]}')
    lab_command("reload", "apply a changed lab file to its running `pyrolab up`",
                "Check LAB.yaml, then restart only the daemons whose configuration changed, start new ones and "
                "stop removed ones; the others keep their process, connections and locks. A file that fails "
                "`pyrolab check` is refused and nothing running is touched.", upctl.cmd_reload,
                "  pyrolab reload lab.yaml")
    q = lab_command("down", "stop a running `pyrolab up` (foreground or detached)",
                    "Stop this PC's running `pyrolab up` of LAB.yaml and every process it runs.", upctl.cmd_down,
                    "  pyrolab down lab.yaml")
    q.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait (default 30)")
    q = lab_command("logs", "print one process's log (-f: follow it)",
                    "Print the log of NAME (a daemon of the file, nameserver, or up) from the logs folder.",
                    upctl.cmd_logs, "  pyrolab logs lab.yaml bench1\n  pyrolab logs lab.yaml nameserver -f")
    q.add_argument("name", metavar="NAME")
    q.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")

    p = sub.add_parser("ls", formatter_class=_RAW, help="list the services a nameserver knows",
                       description="List services: name, status, last seen, lock holder, class, address.",
                       epilog="examples:\n  pyrolab ls\n  pyrolab ls --nameserver 10.0.0.5:9090 --json")
    p.add_argument("--nameserver", metavar="HOST:PORT[,...]",
                   help=f"one or several, comma-separated (default ${ENV_NAMESERVER}, else 127.0.0.1:9090)")
    p.add_argument("--json", action="store_true",
                   help='print {"nameserver": "host:port", "services": [...]} (the REST payload)')
    p.add_argument("--timeout", type=float, default=SETTINGS.ls_timeout, metavar="S",
                   help=f"seconds to wait (default {SETTINGS.ls_timeout:g})")
    p.set_defaults(handler=_cmd_ls)

    p = sub.add_parser("history", formatter_class=_RAW, help="who changed a service, and how",
                       description="Print a service's last state changes from its daemon's audit trail: "
                                   "time, who, call/set/lock/unlock/force_unlock, arguments, outcome.",
                       epilog="examples:\n  pyrolab history lab.laser\n"
                              "  pyrolab history lab.laser -n 200 --json --nameserver 10.0.0.5:9090\n\n"
                              "With $PYROLAB_CERT/$PYROLAB_KEY/$PYROLAB_CA set, connects over TLS.")
    p.add_argument("name", metavar="NAME", help="the service")
    p.add_argument("-n", type=int, default=50, help="how many records (default 50)")
    p.add_argument("--nameserver", metavar="HOST:PORT[,...]",
                   help=f"one or several, comma-separated (default ${ENV_NAMESERVER}, else 127.0.0.1:9090)")
    p.add_argument("--json", action="store_true", help="print the records as a JSON list")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait (default 5)")
    p.set_defaults(handler=_cmd_history)

    p = sub.add_parser("check", formatter_class=_RAW, help="validate a lab file",
                       description="Validate a lab file: keys and types, each service's class, its args.",
                       epilog="examples:\n  pyrolab check lab.yaml")
    p.add_argument("lab", metavar="LAB.yaml")
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser("certs", formatter_class=_RAW, help="make the lab CA and certificates (mutual TLS)",
                       description="Create a lab CA, then a certificate per daemon PC, user and admin. "
                                   "The OU of a certificate is its role: daemon (may register names), "
                                   "user (may call), admin (may also force_unlock).",
                       epilog="examples:\n  pyrolab certs init lab-ca\n"
                              "  pyrolab certs new bench1 --role daemon --dir lab-ca\n"
                              "  pyrolab certs new alice --role user --dir lab-ca --out ~/.pyrolab")
    certs_sub = p.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    q = certs_sub.add_parser("init", help="create the lab CA (lab-ca.pem, lab-ca.key)")
    q.add_argument("dir", metavar="DIR", help="folder for the CA (made private, 0700)")
    q.add_argument("--force", action="store_true", help="replace an existing CA (invalidates every certificate)")
    q = certs_sub.add_parser("new", help="sign a certificate (NAME.pem, NAME.key) with the lab CA")
    q.add_argument("name", metavar="NAME", help="who holds it: a daemon PC, a user or an admin (the CN)")
    q.add_argument("--role", required=True, choices=("daemon", "user", "admin"), help="the OU: what it may do")
    q.add_argument("--dir", default=".", metavar="DIR", help="the CA's folder (default .)")
    q.add_argument("--out", metavar="DIR", help="where to write NAME.pem and NAME.key (default: the CA's folder)")
    q.add_argument("--force", action="store_true", help="replace existing files of that name")
    p.set_defaults(handler=_cmd_certs)

    p = sub.add_parser("replay", formatter_class=_RAW, help="turn recorded VISA sessions into a pyvisa-sim device",
                       description="Write a pyvisa-sim YAML file whose devices answer the recorded dialogue "
                                   "(VisaInstrument(..., record='session.jsonl')) at the recorded resource names.",
                       epilog="examples:\n  pyrolab replay session.jsonl -o device.yaml\n"
                              "  then: VisaInstrument('GPIB0::9::INSTR', backend='device.yaml@sim')")
    p.add_argument("sessions", nargs="+", metavar="SESSION.jsonl")
    p.add_argument("-o", "--output", required=True, metavar="DEVICE.yaml")
    p.set_defaults(handler=_cmd_replay)

    sub.add_parser("demo", formatter_class=_RAW, add_help=False,
                   help="simulated lab + JupyterLab on the quickstart notebook",
                   description="pyrolab demo [--no-browser] [--port P] [--nameserver-port N]",
                   epilog="examples:\n  pyrolab demo\n  pyrolab demo --no-browser --port 8899")
    return parser


def _max_message_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-message-mb", type=float, default=SETTINGS.max_message_mb, metavar="MB",
                        help=f"largest message accepted, in MiB (default {SETTINGS.max_message_mb:g}); "
                             "a larger one is refused at once")


def _bytes(mib: float) -> int:
    if not mib > 0:
        raise SystemExit(f"pyrolab: --max-message-mb={mib}: must be a positive number of MiB")
    return int(mib * 1024 * 1024)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pyrolab`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["demo"]:  # everything after 'demo' belongs to the demo's own parser
        return _run_demo(args_list[1:])
    if args_list[:1] == ["--version"]:
        print(version_report())
        return 0
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except SystemExit as exit_:  # a handler gave up with a code, its message already printed
        return exit_.code if isinstance(exit_.code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
