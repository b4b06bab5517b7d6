"""A plain-HTML summary of a service, for notebooks without widgets and for ``_repr_html_``."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["service_html", "services_html"]


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def service_html(name: str, description: dict[str, Any], lock: dict[str, Any] | None) -> str:
    """Methods, properties and lock state of one service as an HTML fragment."""
    holder = "unlocked" if lock is None else f"locked by {_esc(lock['holder'])}"
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
            f"<td>{_esc(row['name'])}</td><td>{_esc(row['status'])}</td><td>{_esc(row['last_seen'])}</td>"
            f"<td>{_esc(row['locked_by'] or '')}</td><td>{_esc(row['class'])}</td>"
            f"<td>{_esc(row['description'])}</td></tr>"
        )
    return f"<p>Nameserver {_esc(nameserver)}</p><table>{head}{''.join(body)}</table>"
