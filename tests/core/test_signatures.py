"""Signatures and help text rebuilt from a description (what `?`, Tab and help() show)."""

from __future__ import annotations

import inspect

from pyrolab_jupyter.core.signatures import annotation_text, help_text, signature_of

METHOD = {
    "description": "Move.",
    "parameters": {"type": "object", "required": ["mm"], "properties": {
        "mm": {"type": "number", "minimum": 0, "maximum": 100, "x-unit": "mm"},
        "mode": {"enum": ["fast", "slow"], "default": "fast"},
    }},
    "returns": {"type": "null"},
}


def test_signature_keeps_order_required_and_defaults():
    sig = signature_of(METHOD)
    assert list(sig.parameters) == ["mm", "mode"]
    assert sig.parameters["mm"].default is inspect.Parameter.empty
    assert sig.parameters["mode"].default == "fast"
    assert sig.return_annotation == "None"
    assert annotation_text(METHOD["parameters"]["properties"]["mm"]) == "number [0, 100] mm"
    assert annotation_text({"type": "array", "x-ndarray": True}) == "ndarray"


def test_help_text_lists_members():
    text = help_text({"name": "lab.stage", "class": "sim:Stage", "description": "A stage.",
                      "methods": {"move": METHOD},
                      "properties": {"position": {"readonly": True, "schema": {"type": "number", "x-unit": "mm"}}}})
    assert "lab.stage (sim:Stage)" in text
    assert "move(mm: 'number [0, 100] mm', mode: \"'fast' | 'slow'\" = 'fast') -> 'None'  Move." in text
    assert "position: number mm (read-only)" in text


def test_method_and_property_docs_carry_units_ranges_and_roles():
    from pyrolab_jupyter.core.signatures import method_doc, property_doc

    doc = method_doc("move", {**METHOD, "stop": False, "changes": ["position"]})
    assert doc.startswith("Move.") and "mm : number, 0 to 100 mm" in doc and "mode : 'fast' | 'slow' (default 'fast')" in doc
    assert "May change: position." in doc and "move.submit(" in doc
    prop = property_doc("position", {"description": "Where.", "readonly": True, "poll": 0.2,
                                     "schema": {"type": "number", "x-unit": "mm"}})
    assert prop.splitlines()[:3] == ["Where.", "", "number mm"] and "Read-only." in prop and "every 0.2 s" in prop
