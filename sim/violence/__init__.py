"""Violence interruption (type-2 programs): ONS, Cure Violence, focused deterrence.

Shootings are a self-exciting process (background shootings plus retaliations, each
shooting triggering Poisson(n) more). The no-program history is sampled first; programs
(capacity-limited SimPy processes) then cancel shootings in that same history, and a
cancelled shooting takes its descendants with it. Averted counts are therefore exact.

    from sim.violence import load_violence_scenario, plot_sensitivity, run_violence, sensitivity_grid
    s = load_violence_scenario("scenarios/richmond/ons.yaml")
    res = run_violence(s, replications=20, seed=1)
    res.shootings   # one row per shooting per replication, cancelled flag and reason
    res.summary     # KPI, mean, 95% CI
    fig = plot_sensitivity(sensitivity_grid(s, replications=10))

Modules: ``schema`` (scenario files), ``history`` (the self-exciting process),
``programs`` (SimPy programs and cancellation), ``kpis``, ``experiment`` (replications,
grid), ``plots``. Times are minutes inside; scenario fields say their unit.
"""
from .._lazy import lazy_exports

# public name -> the submodule that defines it, imported on first use (PEP 562): reading a
# violence scenario (crisis-sim validate, schema) loads no simulation library
_EXPORTS = {
    "ViolenceResults": "experiment", "run_violence": "experiment", "sensitivity_grid": "experiment",
    "single_run": "experiment", "History": "history", "People": "history", "generate_history": "history",
    "check_targets": "kpis", "plot_sensitivity": "plots", "ViolenceScenario": "schema",
    "load_violence_scenario": "schema",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
