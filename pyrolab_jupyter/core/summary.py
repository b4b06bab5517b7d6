"""Readable summaries of services: HTML for notebooks and ``RemoteService``'s own display, text tables for terminals."""

from __future__ import annotations

import html
from typing import Any

from pyrolab_jupyter.core.timefmt import ago

__all__ = ["ago", "service_html", "services_html", "services_text", "text_table"]


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def service_html(name: str, description: dict[str, Any]) -> str:
    """Methods, properties and lock holder of one service (all in its ``describe()``) as HTML."""
    locked_by = description.get("locked_by")
    holder = "unlocked" if locked_by is None else f"locked by {_esc(locked_by)}"
    rows = [f"<b>{_esc(name)}</b> <code>{_esc(description.get('class'))}</code> — {holder}",
            f"<p>{_esc(description.get('description'))}</p>", "<table>"]
    for pname, prop in description.get("properties", {}).items():
        unit = prop.get("schema", {}).get("x-unit", "")
        mode = "read-only" if prop.get("readonly") else "read/write"
        rows.append(f"<tr><td>property</td><td><code>{_esc(pname)}</code></td><td>{_esc(unit)}</td>"
                    f"<td>{mode}</td><td>{_esc(prop.get('description'))}</td></tr>")
    for mname, method in description.get("methods", {}).items():
        params = ", ".join(method.get("parameters", {}).get("properties", {}))
        rows.append(f"<tr><td>method</td><td><code>{_esc(mname)}({_esc(params)})</code></td><td></td>"
                    f"<td>{'read-only' if method.get('readonly') else ''}</td>"
                    f"<td>{_esc(method.get('description'))}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def services_html(rows: list[dict[str, Any]], nameserver: str) -> str:
    """``lab.services()`` as an HTML table."""
    head = ("<tr><th>name</th><th>status</th><th>last seen</th><th>locked by</th>"
            "<th>class</th><th>description</th></tr>")
    body = []
    for row in rows:
        body.append(
            f"<tr data-service=\"{_esc(row['name'])}\" data-status=\"{_esc(row['status'])}\">"
            f"<td>{_esc(row['name'])}</td><td>{_esc(row['status'])}</td>"
            f"<td title=\"{_esc(row['last_seen'])}\">{_esc(ago(row['last_seen']))}</td>"
            f"<td>{_esc(row['locked_by'] or '')}</td><td>{_esc(row['class'])}</td>"
            f"<td>{_esc(row['description'])}</td></tr>"
        )
    return f"<p>Nameserver {_esc(nameserver)}</p><table>{head}{''.join(body)}</table>"


def text_table(rows: list[list[str]], head: list[str]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [head, *rows])


def services_text(rows: list[dict[str, Any]]) -> str:
    """``lab.services()`` as the table ``pyrolab ls`` prints."""
    head = ["NAME", "STATUS", "LAST SEEN", "LOCKED BY", "CLASS", "ADDRESS"]
    body = [[r["name"], r["status"], ago(r.get("last_seen")), r.get("locked_by") or "-",
             r.get("class") or "-", str(r.get("uri", "")).rpartition("@")[2]] for r in rows]
    return text_table(body, head)
