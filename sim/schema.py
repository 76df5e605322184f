"""``crisis-sim schema``: a JSON Schema of scenario files and the field reference, both
generated from the pydantic models (one source: sim/scenario.py, sim/shifts.py,
sim/distributions.py, sim/violence/schema.py), and the outputs data dictionary
(sim/columns.py).

The schema (JSON Schema draft-07, which every yaml-language-server version reads) covers
crisis-response files and ``kind: violence`` files; a file with ``extends:`` is checked as a
partial file (no field is required, since its parent gives them). It checks structure,
names, types and ranges; what a schema cannot say (shares adding up to 1, a path naming a
pool that exists, exactly one of several fields) is left to ``crisis-sim validate``.
Editors pick it up from a first line ``# yaml-language-server: $schema=<path>/scenario.schema.json``.

This module imports the models only when asked, so ``crisis-sim --help`` stays fast.
"""
from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

DRAFT = "http://json-schema.org/draft-07/schema#"
TOP = ("Scenario", "ViolenceScenario")
PARTIAL = "Partial"

# --------------------------------------------------------------------------- units

_SUFFIX_UNITS = (("_kmh", "km/h"), ("_km", "km"), ("_min", "minutes"), ("_days", "days"),
                 ("_hours", "hours"), ("per_year", "per year"), ("per_month", "per month"),
                 ("per_week", "per week"), ("per_day", "per day"), ("per_hour", "per hour"),
                 ("_cv", "coefficient of variation"))
_FIELD_UNITS = {"hourly_cost": "currency per hour", "vehicle_per_year": "currency per vehicle-year",
                "bed_per_day": "currency per bed-day", "beds": "beds", "teams": "teams",
                "staff": "staff", "priority": "1 = most urgent", "seed": "", "rect_km": "km",
                "start": "HH:MM", "end": "HH:MM (24:00 = midnight)", "by_hour": "teams per hour, 00:00 first",
                "hourly": "weights per hour, Monday 00:00 first", "daily": "weights per hour, 00:00 first",
                "day_of_week": "weights, Monday first"}
_DIST_MODELS = {"Dist", "MeanSd", "Exponential", "Uniform", "Triangular"}


def unit(model: str, field: str, prop: dict) -> str:
    """The unit of a field, from its name (the project's rule: minutes unless the name says
    otherwise), its model (distributions are in minutes) or its range (0-1 is a share)."""
    if field in _FIELD_UNITS:
        return _FIELD_UNITS[field]
    for suffix, u in _SUFFIX_UNITS:
        if field.endswith(suffix):
            return u
    if model in _DIST_MODELS:
        return "minutes"
    lo, hi = _range(prop)
    if lo == 0 and hi == 1:
        return "share 0–1"
    return ""


def _branches(prop: dict) -> list[dict]:
    return prop.get("anyOf") or [prop]


def _range(prop: dict) -> tuple[float | None, float | None]:
    for b in _branches(prop):
        if b.get("type") in ("number", "integer"):
            return (b.get("minimum", b.get("exclusiveMinimum")), b.get("maximum", b.get("exclusiveMaximum")))
    return None, None


# --------------------------------------------------------------------------- the schema


def _walk(node: Any, fn) -> Any:
    """Apply ``fn`` to every mapping of a JSON document, bottom up."""
    if isinstance(node, dict):
        return fn({k: _walk(v, fn) for k, v in node.items()})
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return node


def _draft7(node: dict) -> dict:
    """pydantic writes 2020-12 (``$defs``, ``prefixItems``); draft-07 says the same thus."""
    node = dict(node)
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/$defs/", "#/definitions/")
    if "prefixItems" in node:
        node["items"] = node.pop("prefixItems")
    return node


def _partial(node: dict) -> dict:
    """The same definition with nothing required, pointing to partial definitions."""
    node = {k: v for k, v in node.items() if not (k == "required" and isinstance(v, list))}
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/definitions/", f"#/definitions/{PARTIAL}")
    return node


def json_schema() -> dict:
    """The JSON Schema (draft-07) of scenario files of both kinds."""
    from pydantic.json_schema import models_json_schema

    from .scenario import Scenario
    from .violence.schema import ViolenceScenario

    _, top = models_json_schema([(Scenario, "validation"), (ViolenceScenario, "validation")],
                                ref_template="#/$defs/{model}")
    defs = {name: _walk(d, _draft7) for name, d in top["$defs"].items()}
    # what before-validators accept beyond the annotations: a bare number is a fixed
    # duration (Dist); a violence target's published figure may be a range [low, high]
    dist = defs["Dist"]
    defs["Dist"] = {"title": "Dist", "description": dist.get("description", ""),
                    "anyOf": [{"type": "number", "minimum": 0, "description": "fixed minutes"},
                              {k: v for k, v in dist.items() if k not in ("title", "description")}]}
    published = defs["ViolenceTarget"]["properties"]["published"]
    defs["ViolenceTarget"]["properties"]["published"] = {
        "anyOf": [{k: v for k, v in published.items() if k != "description"},
                  {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}],
        "description": "the published figure, or a range [low, high]"}
    for name in TOP:
        props = defs[name].setdefault("properties", {})
        props["extends"] = {"type": "string", "description": "a parent scenario file (relative to this "
                            "one) whose fields this file merges over; this file gives only what differs"}
    defs.update({f"{PARTIAL}{name}": _walk(d, _partial) for name, d in list(defs.items())})
    ref = "#/definitions/{}".format
    return {
        "$schema": DRAFT,
        "title": "crisis-sim scenario file",
        "description": "A crisis-response scenario, or a violence-interruption scenario (kind: violence). "
                       "Generated by `crisis-sim schema`; `crisis-sim validate` checks what a schema cannot.",
        "type": "object",
        "if": {"required": ["extends"]},
        "then": {"anyOf": [{"$ref": ref(PARTIAL + n)} for n in TOP]},
        "else": {"if": {"required": ["kind"]}, "then": {"$ref": ref("ViolenceScenario")},
                 "else": {"$ref": ref("Scenario")}},
        "definitions": dict(sorted(defs.items())),
    }


# --------------------------------------------------------------------------- the reference


def _anchor(name: str) -> str:
    return name.lower()


def _type(prop: dict) -> str:
    """A schema fragment in words: 'number ≥ 0', 'list of [Pool](#pool)', 'one of `a`, `b`'."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return "a duration (minutes or a [distribution](#dist))" if name == "Dist" else f"[{name}](#{_anchor(name)})"
    if "anyOf" in prop:
        parts = [_type(b) for b in prop["anyOf"] if b.get("type") != "null"]
        return " or ".join(dict.fromkeys(parts)) + (" or null" if any(b.get("type") == "null"
                                                                      for b in prop["anyOf"]) else "")
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    t = prop.get("type")
    if t in ("number", "integer"):
        word = "whole number" if t == "integer" else "number"
        bounds = [f"{sign} {_num(prop[key])}" for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                  ("maximum", "≤"), ("exclusiveMaximum", "<")) if key in prop]
        return word + (" " + ", ".join(bounds) if bounds else "")
    if t == "string":
        return "text"
    if t == "boolean":
        return "true or false"
    if t == "array":
        items = prop.get("items", {})
        if isinstance(items, list):
            return "[" + ", ".join(_type(i) for i in items) + "]"
        n = ""
        if prop.get("minItems") is not None and prop.get("minItems") == prop.get("maxItems"):
            n = f" (exactly {prop['minItems']})"
        elif prop.get("minItems"):
            n = f" (at least {prop['minItems']})"
        return f"list of {_type(items)}{n}"
    if t == "object":
        extra = prop.get("additionalProperties")
        return f"mapping name → {_type(extra)}" if isinstance(extra, dict) else "mapping"
    return "any"


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _meaning(prop: dict, defs: dict) -> str:
    """The field's description, or else the first sentence of the section it holds."""
    if prop.get("description"):
        return prop["description"]
    refs = set(re.findall(r'"#/definitions/([A-Za-z0-9_]+)"', json.dumps(prop))) - {"Dist"}
    if len(refs) == 1:
        text = " ".join(defs[refs.pop()].get("description", "").split())
        return text.split(". ")[0].rstrip(".") if text else ""
    return ""


def _default(prop: dict, required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop:
        return ""
    d = _walk(prop["default"], lambda m: {k: v for k, v in m.items() if v is not None})  # only what is set
    return "`" + json.dumps(d, ensure_ascii=False, separators=(", ", ": ")).replace("|", "\\|") + "`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("``", "`").replace("|", "\\|")


def _order(schema: dict) -> list[str]:
    """Definitions in reading order: each top-level model, then what it uses, depth first."""
    defs = schema["definitions"]
    seen: list[str] = []

    def visit(name: str) -> None:
        if name in seen or name not in defs or name.startswith(PARTIAL):
            return
        seen.append(name)
        for ref in re.findall(r'"#/definitions/([A-Za-z0-9_]+)"', json.dumps(defs[name])):
            visit(ref)
    for name in TOP:
        visit(name)
    return seen


def reference_markdown(schema: dict | None = None) -> str:
    """docs/scenario-reference.md: every field of every section with its allowed values,
    default, unit and meaning."""
    schema = schema or json_schema()
    defs = schema["definitions"]
    out = ["# Scenario file reference", "",
           "Generated from the models in `sim/` by `crisis-sim schema --reference "
           "docs/scenario-reference.md`; do not edit by hand. The same models give the JSON Schema "
           "(`crisis-sim schema --out docs/scenario.schema.json`), which editors use for completion "
           "and checks: put `# yaml-language-server: $schema=../../docs/scenario.schema.json` "
           "(relative to the file) on a scenario's first line.", "",
           "Units: minutes unless the field name says otherwise (`_days`, `_km`, `_kmh`, `per_year`, "
           "...); costs are in the scenario's `costs.currency`. A duration is a number of minutes "
           "or a [distribution](#dist). A file with `extends: parent.yaml` gives only what differs "
           "from its parent. `crisis-sim validate` checks, beyond this reference, that shares add up "
           "to 1 and that every name used (pool, zone, call type, facility...) is defined.", "",
           "Sections: " + ", ".join(f"[{n}](#{_anchor(n)})" for n in _order(schema)) + "."]
    for name in _order(schema):
        d = defs[name]
        out += ["", f"## {name}", ""]
        if d.get("description"):
            out += [" ".join(d["description"].split()), ""]
        if name == "Dist":
            out += ["Write a number (fixed minutes) or a mapping with exactly one of the kinds below "
                    "(and optionally `max`).", ""]
            d = d["anyOf"][1]
        props = d.get("properties", {})
        if not props:
            continue
        required = set(d.get("required", []))
        out += ["| field | allowed | default | unit | meaning |", "| --- | --- | --- | --- | --- |"]
        for field, prop in props.items():
            out.append(f"| `{field}` | {_cell(_type(prop))} | {_default(prop, field in required)} | "
                       f"{unit(name, field, prop)} | {_cell(_meaning(prop, defs))} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- command line


def _write(path: str | None, text: str) -> None:
    if path in (None, "-"):
        sys.stdout.write(text)
        return
    from .results import write_text
    write_text(Path(path), text)
    print(f"wrote {path}", file=sys.stderr)


def _cmd_schema(args) -> int:
    schema = json_schema()
    if args.out or not (args.reference or args.outputs):
        _write(args.out, json.dumps(schema, indent=1, ensure_ascii=False) + "\n")
    if args.reference:
        _write(args.reference, reference_markdown(schema))
    if args.outputs:
        from .columns import markdown
        _write(args.outputs, markdown())
    return 0


def register_cli(sub) -> None:
    """Add ``schema`` to the ``crisis-sim`` subcommands."""
    p = sub.add_parser("schema", help="write the JSON Schema of scenario files (for editors) and the "
                                      "generated references")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the JSON Schema here (default: standard output)")
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="also write the field reference (docs/scenario-reference.md)")
    p.add_argument("--outputs", default=None, metavar="FILE",
                   help="also write the outputs data dictionary (docs/outputs.md)")
    p.set_defaults(func=_cmd_schema)
