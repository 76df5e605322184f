"""Start from a city's own data: calibrate a scenario from a calls-for-service export.

    import sim
    fit = sim.from_cad("calls.csv.gz", columns="san_diego", crosswalk="san_diego")
    fit.scenario          # a validated sim.Scenario
    fit.tables            # exclusions, channels, hour_of_week, mix, priority, zones,
                          # crosswalk, interval_exclusions, durations (DataFrames)
    fit.write("city.yaml"); fit.report("fit.html")

Modules: :mod:`.columns` (column maps), :mod:`.read` (reading, exclusions),
:mod:`.crosswalk`, :mod:`.fit` (the fits and KS tests), :mod:`.core` (``from_cad`` and the
scenario), :mod:`.holdout` (out-of-sample coverage), :mod:`.report` (fit report), :mod:`.cli`.
"""
from __future__ import annotations


def from_cad(calls, columns, crosswalk=None, **kwargs):
    """See :func:`sim.fromdata.core.from_cad`."""
    from .core import from_cad as _from_cad
    return _from_cad(calls, columns, crosswalk, **kwargs)


__all__ = ["from_cad"]
