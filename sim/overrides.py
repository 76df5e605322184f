"""``--set`` and ``--vary``: change fields of a raw scenario mapping by path.

A path names a field the way the file nests it, with dots: ``horizon_days``,
``pools.cahoots.vehicles``, ``triage.paths.behavioral.max_wait_min.0``. Three operators::

    FIELD=VALUE      set the field (VALUE is YAML: 3, 0.5, "13:00", [a, b], {k: v}, null)
    FIELD+=VALUE     append VALUE to the list FIELD, or add VALUE's keys to the mapping FIELD
    FIELD-=KEY       remove the item KEY (an index or a name) from the list or mapping FIELD

``FIELD.+=VALUE`` is the same as ``FIELD+=VALUE`` (``+`` is "a new item at the end").

List items are addressed by index (``0``, ``1``; ``-1`` is the last) or by their ``name:``
(``pools.cahoots.shifts.night.teams=2``); mapping entries by their key (a pool by its name).

A path must exist: a field of the schema (it may be absent from the file and then gets its
default until set), or an entry that the scenario has. A misspelled pool, shift or call type
is refused with one line naming the ones there are, never created; new entries are added
with ``+=`` only. Whether a field's value is allowed is left to validation.

Values are read as YAML 1.2 core scalars: ``13:00`` is the text "13:00" (YAML 1.1 would read
the number 780), ``yes``/``no``/``on``/``off`` are text, ``1e5`` is a number, empty is null.
"""
from __future__ import annotations

import copy
import re
import types
import typing
from typing import Any, Annotated, get_args, get_origin

import yaml
from pydantic import BaseModel

from .scenario import ScenarioError, Scenario

# --------------------------------------------------------------------------- values

_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and numbers, and no timestamps."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Yaml12Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def parse_value(text: str) -> Any:
    """A ``--set`` value read as YAML 1.2 (see module docstring); text that is not valid
    YAML is taken as it is."""
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- the schema beside the data


def _branches(ann: Any) -> list:
    """The alternatives of an annotation (Union / Optional / Annotated unpacked)."""
    origin = get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        return [b for a in get_args(ann) for b in _branches(a)]
    if origin is Annotated:
        return _branches(get_args(ann)[0])
    return [ann]


def _models(ann) -> list[type[BaseModel]]:
    return [b for b in _branches(ann) if isinstance(b, type) and issubclass(b, BaseModel)]


def _mapping_value(ann):
    """The value annotation if ``ann`` allows a ``dict[str, X]`` (a named collection), else None."""
    for b in _branches(ann):
        if get_origin(b) is dict:
            return get_args(b)[1] if get_args(b) else Any
    return None


def _list_item(ann):
    for b in _branches(ann):
        if get_origin(b) in (list, tuple):
            return get_args(b)[0] if get_args(b) else Any
    return None


def _child(ann, key: str):
    """Annotation of ``key`` inside a mapping of annotation ``ann`` (None if unknown)."""
    for m in _models(ann):
        if key in m.model_fields:
            return m.model_fields[key].annotation
    return _mapping_value(ann)


def _is_field(ann, key: str) -> bool:
    return any(key in m.model_fields for m in _models(ann))


def _is_collection(ann) -> bool:
    """A mapping whose keys the scenario names (pools, call types...), not model fields."""
    return _mapping_value(ann) is not None and not _models(ann)


def _root_model(data: dict) -> type[BaseModel]:
    if data.get("kind") == "violence":
        from .violence.schema import ViolenceScenario
        return ViolenceScenario
    return Scenario


# --------------------------------------------------------------------------- paths


def _names(items: list) -> list[str]:
    return [str(x["name"]) for x in items if isinstance(x, dict) and "name" in x]


def _index(items: list, part: str, where: str) -> int:
    """Position in a list of ``part`` (an index, negative from the end, or an item's name)."""
    if re.fullmatch(r"-?\d+", part):
        i = int(part)
        if -len(items) <= i < len(items):
            return i % len(items)
    else:
        hits = [i for i, x in enumerate(items) if isinstance(x, dict) and str(x.get("name")) == part]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"{len(hits)} items of {where} are named '{part}'; use an index")
    names = _names(items)
    have = (f"indexes 0..{len(items) - 1} (or -1 for the last)" if items else "no items")
    raise ValueError(f"'{part}' is not an index or a name of the list at {where}; it has {have}"
                     + (f", names: {', '.join(names)}" if names else "")
                     + (f"; append with {where}+=VALUE" if not names or part.lstrip('-').isdigit() else ""))


def _missing_entry(node: dict, part: str, where: str) -> ValueError:
    known = ", ".join(map(str, node)) or "(none)"
    return ValueError(f"no '{part}' in {where} (it has: {known}); add one with {where}+={{{part}: ...}}")


def _at(where: str) -> str:
    return where or "the top level"


def _split(key: str) -> tuple[list[str], str]:
    """'a.b.c+' -> (['a', 'b', 'c'], '+'); operator '=' , '+' (append/add) or '-' (remove)."""
    op = "="
    if key.endswith("+") or key.endswith("-"):
        key, op = key[:-1], key[-1]
        key = key.removesuffix(".")
    parts = key.split(".")
    if not key or any(p == "" for p in parts):
        raise ValueError("a field path is names joined by dots, like pools.cahoots.vehicles")
    return parts, op


def _descend(node: Any, ann, part: str, where: str) -> tuple[Any, Any, Any]:
    """(container, key, child annotation) of ``part`` inside ``node``; the container gets an
    empty mapping for a schema field that the file leaves out."""
    if isinstance(node, list):
        return node, _index(node, part, _at(where)), _list_item(ann)
    if isinstance(node, dict):
        if part not in node and _is_collection(ann):
            raise _missing_entry(node, part, where)
        return node, part, _child(ann, part)
    raise ValueError(f"{_at(where)} is {node!r}, not a mapping or a list; set it whole with {where}=VALUE")


def _apply_one(data: dict, key: str, value: Any, model: type[BaseModel]) -> None:
    parts, op = _split(key)
    node, ann = data, model
    where = ""
    for part in parts[:-1]:
        container, k, ann = _descend(node, ann, part, where)
        if isinstance(container, dict) and k not in container:
            container[k] = [] if _list_item(ann) is not None and not _models(ann) else {}
        node = container[k]
        where = f"{where}.{part}" if where else part
    last = parts[-1]
    container, k, ann = _descend(node, ann, last, where)
    path = f"{where}.{last}" if where else last
    if op == "=":
        container[k] = value
        return
    present = container[k] if (isinstance(container, list) or k in container) else None
    if op == "+":
        if present is None and _list_item(ann) is not None:
            present = container[k] = []
        elif present is None and _mapping_value(ann) is not None:
            present = container[k] = {}
        if isinstance(present, list):
            present.append(value)
        elif isinstance(present, dict):
            if not isinstance(value, dict):
                raise ValueError(f"{path} is a mapping: add entries with {path}+={{name: value}}")
            for name, v in value.items():
                if name in present:
                    raise ValueError(f"{path} already has '{name}'; change it with {path}.{name}.FIELD=VALUE")
                present[name] = v
        else:
            raise ValueError(f"{path} is {present!r}, not a list or a mapping; += appends to a list "
                             "or adds entries to a mapping")
        return
    if isinstance(present, list):
        del present[_index(present, str(value), path)]
    elif isinstance(present, dict):
        if str(value) not in present:
            raise ValueError(f"no '{value}' in {path} (it has: {', '.join(map(str, present)) or '(none)'})")
        del present[str(value)]
    else:
        raise ValueError(f"{path} is {present!r}, not a list or a mapping; -= removes an item by index or name")


def pairs(overrides: dict[str, Any] | list[str], flag: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "c+={x: 2}"]`` -> ``{"a.b": 1, "c+": {"x": 2}}`` (a dict passes through)."""
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(None, None, f"{flag} '{item}' must look like field.path=value")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def apply(data: dict, overrides: dict[str, Any] | list[str] | None, file: str | None = None) -> dict:
    """A copy of the raw mapping ``data`` with ``overrides`` applied in order (see module
    docstring); a path that does not exist is a :class:`ScenarioError` naming the choices."""
    if not overrides:
        return data
    try:
        items = pairs(overrides)
    except ScenarioError as e:
        raise ScenarioError(file, None, e.message) from None
    data = copy.deepcopy(data)
    model = _root_model(data)
    for key, value in items.items():
        try:
            _apply_one(data, key, value, model)
        except ValueError as e:
            raise ScenarioError(file, key, str(e)) from None
    if isinstance(data.get("name"), str) and "name" not in items:
        data["name"] = label(data["name"], items)
    return data


def label(name: str, overrides: dict[str, Any]) -> str:
    """A scenario's label: its display name plus the overrides applied, as they were written
    (``Eugene — CAHOOTS (2019) (horizon_days=30, pools.cahoots.shifts.0.teams=2)``). Every
    table, report and manifest shows this label, because :func:`apply` puts it in ``name``
    (unless the overrides set ``name`` themselves)."""
    def short(key: str, v: Any) -> str:
        text = v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True, width=10**6,
                                                           allow_unicode=True).strip()
        text = text.removesuffix("\n...").strip()
        key = key if key[-1:] not in "+-" else f"{key[:-1].removesuffix('.')}{key[-1]}"
        return f"{key}={text if len(text) <= 40 else text[:39] + '…'}"
    return f"{name} ({', '.join(short(k, v) for k, v in overrides.items())})" if overrides else name
