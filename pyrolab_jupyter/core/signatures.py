"""Python signatures and help text rebuilt from a service's description, for ``help()``, ``?`` and Tab."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["annotation_text", "help_text", "signature_of"]


def annotation_text(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    if "enum" in schema:
        kind = " | ".join(repr(x) for x in schema["enum"])
    elif schema.get("x-ndarray"):
        kind = "ndarray"
    bounds = ""
    if "minimum" in schema or "maximum" in schema:
        bounds = f" [{schema.get('minimum', '-inf')}, {schema.get('maximum', 'inf')}]"
    unit = f" {schema['x-unit']}" if "x-unit" in schema else ""
    return f"{kind}{bounds}{unit}"


def signature_of(description: dict[str, Any]) -> inspect.Signature:
    params_schema = description.get("parameters", {})
    if params_schema.get("x-varargs"):  # a method known by name only (Pyro5 metadata): any arguments
        return inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                                  inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
    required = set(params_schema.get("required", []))
    params = []
    for pname, schema in params_schema.get("properties", {}).items():
        default = inspect.Parameter.empty if pname in required else schema.get("default")
        params.append(inspect.Parameter(pname, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=default, annotation=annotation_text(schema)))
    returns = description.get("returns", {})
    ret = "None" if returns.get("type") == "null" else annotation_text(returns)
    return inspect.Signature(params, return_annotation=ret)


def help_text(description: dict[str, Any]) -> str:
    lines = [f"{description.get('name')} ({description.get('class')})", "", description.get("description", "")]
    methods: dict[str, Any] = description.get("methods", {})
    props: dict[str, Any] = description.get("properties", {})
    if methods:
        lines += ["", "Methods:"]
        lines += [f"  {n}{signature_of(d)}  {d.get('description', '').splitlines()[0] if d.get('description') else ''}"
                  for n, d in methods.items()]
    if props:
        lines += ["", "Properties:"]
        lines += [f"  {n}: {annotation_text(d.get('schema', {}))}{' (read-only)' if d.get('readonly') else ''}"
                  for n, d in props.items()]
    return "\n".join(lines)
