"""Column maps: where a city's calls-for-service export keeps each thing the fits need.

A column map is a small YAML file, one per export layout. Built-in maps live in
``sim/fromdata/maps/`` and are named by their stem (``--columns san_diego``)::

    name: San Diego PD calls for service (data.sandiego.gov)
    timezone: America/Los_Angeles          # local time of the stamps (DST is handled)
    date_formats: ["%Y-%m-%d %H:%M:%S"]    # strptime formats, tried in order; nothing is guessed
    missing_values: ["", "NULL"]           # cells that mean "not recorded"
    timestamps:                            # stage -> column (or {column, formats})
      received: date_time                  # required
      dispatched: ...                      # optional: queued, dispatched, en_route, on_scene, cleared
    durations:                             # a stage published only as a duration after another stage
      on_scene: {column: traveltime, unit: min, after: dispatched}
    fields:                                # call_type is required
      call_type: call_type                 # or {column, pattern, map, default, missing}
      priority: {column: priority, map: {"0": "1", "1": "2"}}
    classify_by: call_type                 # or call_type_initial: the type the crosswalk reads
    self_initiated: [{column: ..., values: [...]}]   # excluded by default, counted
    cancelled:      [{column: ..., pattern: ...}]    # excluded by default, counted
    exclude:        [{column: ..., values: [...], reason: off-duty detail}]
    responder: {column: Agency, map: {POLICE: police, EMS: ems}, default: police,
                civilian: {column: unit, pattern: "^CAHOOTS"}}

Fields: ``call_type``, ``call_type_initial``, ``priority`` (after ``map``, a positive
integer, 1 = most urgent), ``disposition``, ``zone``, ``channel`` (how the call came in; it
becomes the scenario's channel), ``x``, ``y`` (planar coordinates; ``coordinates_km`` says how
many km one unit is, and each zone then gets a ``rect_km`` from its calls), ``id``.
Durations and the ``max_minutes`` thresholds (absurd intervals) are minutes unless ``unit``
says otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator, model_validator

from ..scenario import ScenarioError

MAPS_DIR = Path(__file__).resolve().parent / "maps"
STAGES = ("received", "queued", "dispatched", "en_route", "on_scene", "cleared")
FIELDS = ("id", "call_type", "call_type_initial", "priority", "disposition", "zone", "channel", "x", "y")
# Intervals fitted, as (name, from stage, to stage); the first available "from" stage is used.
INTERVALS = {
    "processing": (("received",), ("queued", "dispatched")),   # before a unit is sought
    "turnout": (("dispatched",), ("en_route",)),
    "travel": (("en_route", "dispatched"), ("on_scene",)),
    "on_scene": (("on_scene",), ("cleared",)),
}
DEFAULT_MAX_MIN = {"processing": 24 * 60, "turnout": 6 * 60, "travel": 6 * 60, "on_scene": 24 * 60}


class FromDataError(ScenarioError):
    """Input the calibration cannot use; ``str()`` is the one line shown to the planner."""

    def __init__(self, file: str | Path | None, field: str | None, message: str):
        super().__init__(str(file) if file is not None else None, field, message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"pattern is not a valid regular expression ({e})") from None
    return pattern


class Field_(_Strict):
    """One column read as text: optional regex (its first group is kept), a value map and
    values that mean missing."""

    column: str
    pattern: str | None = Field(None, description="regex searched in the cell; group 1 (or the match) is kept")
    map: dict[str, str] | None = Field(None, description="value after pattern -> value used")
    default: str | None = Field(None, description="value for cells the map does not list (default: keep the cell)")
    missing: list[str] = Field([], description="values that mean not recorded, besides missing_values")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, v):
        return {"column": v} if isinstance(v, str) else v

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v):
        return _check_regex(v)

    @field_validator("map", mode="before")
    @classmethod
    def _text_keys(cls, v):
        return {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else v


class TimeSpec(_Strict):
    column: str
    formats: list[str] | None = Field(None, description="strptime formats for this column (default: date_formats)")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, v):
        return {"column": v} if isinstance(v, str) else v


class DurationSpec(_Strict):
    column: str
    unit: Literal["s", "min", "h"] = "min"
    after: Literal["received", "queued", "dispatched", "en_route", "on_scene"]


class Rule(_Strict):
    """Rows whose ``column`` equals one of ``values`` (case-insensitive, trimmed) or matches
    ``pattern`` (regex search)."""

    column: str
    values: list[str] | None = None
    pattern: str | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.values is None) == (self.pattern is None):
            raise ValueError("give values: [...] or pattern: REGEX")
        _check_regex(self.pattern)
        return self

    @field_validator("values", mode="before")
    @classmethod
    def _text(cls, v):
        return [str(x) for x in v] if isinstance(v, list) else v


class Responder(Field_):
    """Who answered: the column's values mapped to a responder kind (police, fire, ems...);
    ``civilian`` marks rows answered by a civilian team (a unit-name pattern, say)."""

    civilian: Rule | None = None


class ColumnMap(_Strict):
    name: str
    source: str = ""
    timezone: str | None = Field(None, description="IANA zone of the local stamps, e.g. America/New_York")
    date_formats: list[str] = Field(min_length=1)
    missing_values: list[str] = ["", "NULL"]
    timestamps: dict[Literal["received", "queued", "dispatched", "en_route", "on_scene", "cleared"], TimeSpec]
    durations: dict[Literal["queued", "dispatched", "en_route", "on_scene", "cleared"], DurationSpec] = {}
    fields: dict[Literal["id", "call_type", "call_type_initial", "priority", "disposition", "zone",
                         "channel", "x", "y"], Field_]
    classify_by: Literal["call_type", "call_type_initial"] = "call_type"
    self_initiated: list[Rule] = []
    cancelled: list[Rule] = []
    exclude: list[Rule] = []
    responder: Responder | None = None
    max_minutes: dict[Literal["processing", "turnout", "travel", "on_scene"], PositiveFloat] = {}
    coordinates_km: PositiveFloat | None = Field(
        None, description="km per unit of the x / y columns (planar coordinates: 0.0003048 for US survey "
                          "feet); with it, each zone gets rect_km from its calls' locations")

    @model_validator(mode="after")
    def _required(self):
        if "received" not in self.timestamps:
            raise ValueError("timestamps needs received: COLUMN (when the call came in)")
        if "call_type" not in self.fields:
            raise ValueError("fields needs call_type: COLUMN")
        both = set(self.timestamps) & set(self.durations)
        if both:
            raise ValueError(f"stage(s) {', '.join(sorted(both))} given both as a timestamp and a duration")
        if self.classify_by not in self.fields:
            raise ValueError(f"classify_by: {self.classify_by} but fields has no {self.classify_by}")
        for stage, d in self.durations.items():
            if d.after not in self.timestamps and d.after not in self.durations:
                raise ValueError(f"durations.{stage}.after: stage '{d.after}' is neither a timestamp nor a duration")
        return self

    def columns(self) -> dict[str, str]:
        """Every file column the map reads -> the map field that names it."""
        out: dict[str, str] = {}
        for k, t in self.timestamps.items():
            out.setdefault(t.column, f"timestamps.{k}")
        for k, d in self.durations.items():
            out.setdefault(d.column, f"durations.{k}")
        for k, f in self.fields.items():
            out.setdefault(f.column, f"fields.{k}")
        for group in ("self_initiated", "cancelled", "exclude"):
            for i, r in enumerate(getattr(self, group)):
                out.setdefault(r.column, f"{group}.{i}")
        if self.responder:
            out.setdefault(self.responder.column, "responder")
            if self.responder.civilian:
                out.setdefault(self.responder.civilian.column, "responder.civilian")
        return out

    def max_min(self, interval: str) -> float:
        return self.max_minutes.get(interval, DEFAULT_MAX_MIN[interval])


def builtin_maps() -> list[str]:
    """Names of the column maps shipped with crisis-sim."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.yaml"))


def load_column_map(spec: str | Path | dict) -> tuple[ColumnMap, str]:
    """A column map from a YAML file, a built-in name (``san_diego``) or a mapping;
    returns (map, where it came from)."""
    if isinstance(spec, dict):
        where, data = "<column map>", spec
    else:
        path = Path(spec)
        if not path.exists() and (MAPS_DIR / f"{spec}.yaml").exists():
            path = MAPS_DIR / f"{spec}.yaml"
        where = str(path)
        if not path.exists():
            raise FromDataError(where, None, "column map not found; give a YAML file or one of the built-in "
                                f"maps: {', '.join(builtin_maps())}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise FromDataError(where, None, f"not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise FromDataError(where, None, "a column map is a mapping (name:, timestamps:, fields:, ...)")
    try:
        return ColumnMap.model_validate(data), where
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        raise FromDataError(where, loc or None, msg) from None
