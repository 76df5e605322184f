"""How each published target relates to the model's inputs (the rules behind ``basis:``).

A target (``targets:`` in a scenario file) compares a simulated KPI with a published
figure. Whether that comparison tests anything depends on how the figure was used when
the file was written, which the target states in ``basis:``:

* ``input``: the figure equals, or is arithmetic on, an input (a backup share that is
  itself the outcome probability). A consistency check of the engine's bookkeeping.
* ``fitted``: a parameter was set so the figure is met. The file's ``calibrated:`` mapping
  names that parameter (``calibrated: {pools.mcu.shifts.0.teams: [pool_calls_per_month.mcu.911=200]}``).
  Meeting it shows the rest of the model can carry the fit, nothing more.
* ``derived``: true by construction of the rules the file states (every Friday-night
  callback waits for Friday). A check that the mechanism was written as intended.
* ``definition``: true by definition (a counterfactual averts nothing). These belong in
  unit tests, not in ``targets:``; the shipped files carry none.
* ``predicted``: no input was set from the figure. Only these count as validation.

A figure reference in ``calibrated:`` is ``metric=value``; it names every target of the
file with that metric whose band ``published ± tolerance`` holds ``value`` (a parameter
fitted to a figure inside a target's band cannot be used to predict that target).

Dotted paths (``calibrated:`` keys, ``ranges:`` keys, ``targets[].inputs``) are the
``--set`` paths of :func:`sim.scenario.apply_overrides` and must name a field of the
validated scenario; a ``ranges:`` path must name a number (the shipped files keep each
value inside its range, a test checks; a sweep or ``--set`` may go beyond it).
"""
from __future__ import annotations

from typing import Any

BASES = ("input", "fitted", "derived", "definition", "predicted")
_MISSING = object()


def parse_ref(ref: str) -> tuple[str, float]:
    """``"metric=value"`` -> (metric, value); ValueError naming what is allowed."""
    metric, sep, value = str(ref).partition("=")
    try:
        if not sep or not metric.strip():
            raise ValueError
        return metric.strip(), float(value)
    except ValueError:
        raise ValueError(f"'{ref}' must name a figure as metric=value, "
                         "e.g. pool_calls_per_year.cahoots=24000") from None


def refers_to(ref: str, target) -> bool:
    """Does the figure reference ``ref`` name ``target`` (same metric, value in its band)?"""
    metric, value = parse_ref(ref)
    return metric == target.metric and abs(value - target.published) <= target.tolerance + 1e-9 * max(
        1.0, abs(target.published))


def resolve(data: Any, path: str) -> Any:
    """The value at a dotted path of a mapping (lists by index); KeyError if absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def fitted_params(scenario, target) -> list[str]:
    """The parameters the file's ``calibrated:`` mapping says were set to meet ``target``."""
    return [p for p, refs in scenario.calibrated.items() if any(refers_to(r, target) for r in refs)]


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def problems(scenario) -> list[str]:
    """Every breach of the rules above, as ``field.path: message`` strings (empty if none)."""
    out: list[str] = []
    data = scenario.model_dump()
    targets = list(getattr(scenario, "targets", []) or [])

    def exists(path: str, where: str) -> bool:
        try:
            resolve(data, path)
            return True
        except KeyError:
            out.append(f"{where}: '{path}' is not a field of this scenario (a dotted --set path)")
            return False

    for param, refs in scenario.calibrated.items():
        exists(param, f"calibrated.{param}")
        for ref in refs:
            try:
                parse_ref(ref)
            except ValueError as e:
                out.append(f"calibrated.{param}: {e}")
    if out:
        return out
    for param, (low, high) in scenario.ranges.items():
        if not exists(param, f"ranges.{param}"):
            continue
        value = resolve(data, param)
        if not is_number(value):      # (a value outside its range is allowed: sweeps go beyond it)
            out.append(f"ranges.{param}: a range needs a number there (found {value!r})")
    for i, t in enumerate(targets):
        where = f"targets.{i}"
        for p in t.inputs:
            exists(p, f"{where}.inputs")
        fitted = fitted_params(scenario, t)
        if t.basis == "fitted" and not fitted:
            out.append(f"{where}: basis fitted, but no entry of calibrated: names "
                       f"{t.metric}={t.published:g} (say which parameter was set to meet it)")
        if t.basis == "predicted" and fitted:
            named = [p for p in fitted if p in t.inputs]
            which = (f"its input {named[0]}" if named else f"{fitted[0]}")
            out.append(f"{where}: basis predicted, but {which} was calibrated against "
                       f"{t.metric}={t.published:g} (calibrated: {fitted[0]}); a fitted figure is not a prediction")
        if t.basis == "input" and not t.inputs:
            out.append(f"{where}: basis input needs inputs: [the input(s) the figure repeats]")
    return out
