"""Python signatures and help text rebuilt from a service's description, for ``help()``, ``?`` and Tab."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["annotation_text", "help_text", "method_doc", "property_doc", "signature_of"]


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


def _value_text(schema: dict[str, Any]) -> str:
    """``float, 0 to 50 mW``: type, range and unit in words, for docstrings."""
    kind = "ndarray" if schema.get("x-ndarray") else str(schema.get("type", "any"))
    parts = [" | ".join(repr(x) for x in schema["enum"]) if "enum" in schema else kind]
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        parts.append(f"{low:g} to {high:g}" if isinstance(low, float) or isinstance(high, float) else f"{low} to {high}")
    elif low is not None:
        parts.append(f"at least {low}")
    elif high is not None:
        parts.append(f"at most {high}")
    text = ", ".join(parts)
    return f"{text} {schema['x-unit']}" if "x-unit" in schema else text


def method_doc(name: str, description: dict[str, Any]) -> str:
    """A remote method's docstring: its own doc, then each parameter's type, range, unit and default."""
    lines = [description.get("description") or f"{name}(): no description."]
    params = description.get("parameters", {})
    required = set(params.get("required", []))
    entries = params.get("properties", {})
    if entries:
        lines += ["", "Parameters", "----------"]
        for pname, schema in entries.items():
            default = "" if pname in required else f" (default {schema.get('default')!r})"
            lines.append(f"{pname} : {_value_text(schema)}{default}")
    returns = description.get("returns", {})
    if returns and returns.get("type") != "null":
        lines += ["", "Returns", "-------", _value_text(returns)]
    notes = []
    if description.get("readonly"):
        notes.append("Read-only: callable while another client holds the lock.")
    if description.get("stop"):
        notes.append("The service's stop action: anyone may call it, locked or not.")
    if description.get("changes") is not None:
        notes.append(f"May change: {', '.join(description['changes']) or 'nothing'}.")
    notes.append(f"Runs on the daemon; {name}.submit(...) returns a Future instead of waiting.")
    return "\n".join(lines + [""] + notes)


def property_doc(name: str, description: dict[str, Any]) -> str:
    """A remote property's docstring: its doc, type, range, unit, and whether it can be set or is polled."""
    schema = description.get("schema", {})
    lines = [description.get("description") or f"{name}: no description.", "", _value_text(schema)]
    lines.append("Read-only." if description.get("readonly") else f"Settable: remote.{name} = value.")
    if description.get("poll") is not None:
        lines.append(f"Changes by itself: the daemon polls it every {description['poll']:g} s while someone subscribes.")
    return "\n".join(lines)
