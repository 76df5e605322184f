"""Crosswalks: a city's raw call types -> the scenario's call types and response path.

A crosswalk is a CSV with the columns ``raw_value, call_type, path, source`` and optionally
``match`` (``exact``, the default, trimmed and case-insensitive; or ``regex``, searched in
file order after every exact rule), ``category`` and ``label``. ``path`` says which
response the type is eligible for: ``civilian`` (a civilian crisis team), ``co_responder``
(a clinician with an officer) or ``police`` (not eligible: answered as the data shows,
by police, fire or EMS). ``source`` says where the rule comes from.

A raw type no rule covers becomes ``other`` (path police) and is listed with its count in
the fit report. Built-in crosswalks live in ``sim/fromdata/crosswalks/`` (see its README).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .columns import FromDataError

CROSSWALKS_DIR = Path(__file__).resolve().parent / "crosswalks"
PATHS = ("civilian", "co_responder", "police")
UNMAPPED = "other"
REQUIRED = ("raw_value", "call_type", "path")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Crosswalk:
    rules: pd.DataFrame     # raw_value, call_type, path, source, match, category, label
    where: str

    def labels(self) -> dict[str, str]:
        lab = self.rules[self.rules["label"] != ""].drop_duplicates("call_type")
        return dict(zip(lab["call_type"], lab["label"]))

    def apply(self, raw: pd.Series) -> pd.DataFrame:
        """Per row: call_type, path, rule ('exact' / 'regex' / '' when unmapped)."""
        key = raw.fillna("").astype(str).str.strip().str.upper()
        exact = self.rules[self.rules["match"] == "exact"].drop_duplicates("key")
        lookup = exact.set_index("key")
        out = pd.DataFrame({"call_type": key.map(lookup["call_type"]).astype(object),
                            "path": key.map(lookup["path"]).astype(object)}, index=raw.index)
        out["rule"] = np.where(out["call_type"].notna(), "exact", "")
        uniq = pd.Series(key[out["call_type"].isna()].unique())
        for r in self.rules[self.rules["match"] == "regex"].itertuples():
            if uniq.empty:
                break
            with warnings.catch_warnings():     # groups in a rule are fine: only the match counts
                warnings.simplefilter("ignore", UserWarning)
                hit = uniq[uniq.str.contains(r.raw_value, regex=True, flags=re.IGNORECASE)]
            if len(hit):
                sel = key.isin(set(hit)) & out["call_type"].isna()
                out.loc[sel, ["call_type", "path", "rule"]] = [r.call_type, r.path, "regex"]
                uniq = uniq[~uniq.isin(set(hit))]
        out["call_type"] = out["call_type"].fillna(UNMAPPED)
        out["path"] = out["path"].fillna("police")
        return out


def builtin_crosswalks() -> list[str]:
    return sorted(p.stem for p in CROSSWALKS_DIR.glob("*.csv"))


def load_crosswalk(spec: str | Path | None) -> Crosswalk | None:
    """A crosswalk CSV (a path or a built-in name), or None (every raw type is its own type)."""
    if spec is None:
        return None
    path = Path(spec)
    if not path.exists() and (CROSSWALKS_DIR / f"{spec}.csv").exists():
        path = CROSSWALKS_DIR / f"{spec}.csv"
    if not path.exists():
        raise FromDataError(path, None, "crosswalk not found; give a CSV file or one of the built-in "
                            f"crosswalks: {', '.join(builtin_crosswalks())}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise FromDataError(path, None, f"cannot read the crosswalk CSV ({str(e).splitlines()[0]})") from None
    for c in REQUIRED:
        if c not in df.columns:
            raise FromDataError(path, None, f"crosswalk needs the column '{c}' (columns: raw_value, "
                                "call_type, path, source; optional match, category, label)")
    for c in ("source", "match", "category", "label"):
        if c not in df.columns:
            df[c] = ""
    df = df.apply(lambda s: s.str.strip())
    df["match"] = df["match"].replace("", "exact").str.lower()
    for i, r in enumerate(df.itertuples(), start=2):
        if r.path not in PATHS:
            raise FromDataError(path, f"line {i}: path", f"'{r.path}' is not one of {', '.join(PATHS)}")
        if not _NAME.match(r.call_type):
            raise FromDataError(path, f"line {i}: call_type", f"'{r.call_type}' must be lower_snake_case "
                                "(letters, digits, _), it becomes a scenario key")
        if r.match not in ("exact", "regex"):
            raise FromDataError(path, f"line {i}: match", f"'{r.match}' is not exact or regex")
        if r.match == "regex":
            try:
                re.compile(r.raw_value)
            except re.error as e:
                raise FromDataError(path, f"line {i}: raw_value", f"not a valid regular expression ({e})") from None
    df["key"] = df["raw_value"].str.upper()
    return Crosswalk(rules=df, where=str(path))


def identity(raw: pd.Series) -> pd.DataFrame:
    """No crosswalk: each raw type becomes its own (snake-cased) call type, path police."""
    key = raw.fillna("").astype(str).str.strip()
    name = key.str.lower().str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_")
    name = name.where(name.str.match(r"^[a-z]"), "t_" + name).replace("t_", UNMAPPED)
    return pd.DataFrame({"call_type": name, "path": "police", "rule": "identity"}, index=raw.index)
