"""``environment.yml`` (conda) asks for the same dependencies as ``pyproject.toml``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def _normal(name: str) -> str:
    """PEP 503 name: conda's ``pyyaml``/``jupyter_server`` equal pip's ``PyYAML``/``jupyter-server``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str) -> tuple[str, str]:
    match = _REQUIREMENT.match(requirement.split(";")[0])
    assert match, f"cannot read the requirement {requirement!r}"
    return _normal(match.group(1)), match.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["jupyter"]
    return dict(_split(r) for r in wanted)


def _environment() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found: dict[str, str] = {}
    extra: list[str] = []
    for item in env["dependencies"]:
        for requirement in item["pip"] if isinstance(item, dict) else [item]:
            if requirement.startswith("-e") or requirement in (".", "pip"):
                extra.append(requirement)
                continue
            name, spec = _split(requirement.replace("=", "==", 1) if re.search(r"[^<>=!]=[^=]", requirement)
                                else requirement)
            if name == "python":
                extra.append(requirement)
                continue
            found[name] = spec
    return found, extra


def test_environment_names_the_same_dependencies_as_pyproject():
    wanted = _pyproject()
    found, _ = _environment()
    assert sorted(found) == sorted(wanted), (
        f"only in pyproject.toml: {sorted(set(wanted) - set(found))}; "
        f"only in environment.yml: {sorted(set(found) - set(wanted))}")


def test_environment_asks_for_the_same_minimum_versions():
    wanted = _pyproject()
    found, _ = _environment()
    differ = {name: (wanted[name], found[name]) for name in wanted if found.get(name) != wanted[name]}
    assert not differ, f"pyproject.toml vs environment.yml: {differ}"


def test_environment_installs_this_checkout_on_a_supported_python():
    _, extra = _environment()
    assert "-e ." in extra or "." in extra
    python = next(e for e in extra if e.startswith("python"))
    version = tuple(int(p) for p in re.findall(r"\d+", python)[:2])
    minimum = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version >= tuple(int(p) for p in re.findall(r"\d+", minimum)[:2])


def _commented_extras() -> dict[str, dict[str, str]]:
    """``# extra NAME:`` blocks of ``#  - requirement`` lines; ``(pip only)`` extras have no lines."""
    extras: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if match := re.match(r"^# extra ([\w-]+)( \(pip only)?", line):
            current = extras.setdefault(match.group(1), {})
            if match.group(2):
                current["(pip only)"] = ""
        elif current is not None and (item := re.match(r"^#\s+-\s+(\S.*)$", line)):
            name, spec = _split(item.group(1))
            current[name] = spec
        else:
            current = None
    return extras


def test_environment_carries_every_optional_extra_as_comments():
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    commented = _commented_extras()
    assert sorted(commented) == sorted(set(optional) - {"jupyter"})  # jupyter is installed outright
    for extra, found in commented.items():
        if "(pip only)" in found:
            continue
        wanted = dict(_split(r) for r in optional[extra])
        assert found == wanted, f"extra {extra}: pyproject.toml {wanted} vs environment.yml {found}"


def test_packaging_files_exist():
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "pyrolab_jupyter" / "py.typed").is_file()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "0.1.0" in changelog


def test_claimed_python_versions_are_the_tested_one():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = tuple(int(p) for p in re.findall(r"\d+", project["requires-python"])[:2])
    claimed = [tuple(int(p) for p in c.rsplit(":: ", 1)[1].split(".")) for c in project["classifiers"]
               if re.match(r"Programming Language :: Python :: 3\.\d+$", c)]
    assert claimed and min(claimed) == minimum
    assert sys.version_info[:2] in claimed, f"this Python {sys.version_info[:2]} is not among the claimed {claimed}"
