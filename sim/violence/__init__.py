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
from .experiment import ViolenceResults, run_violence, sensitivity_grid, single_run
from .history import History, People, generate_history
from .kpis import check_targets
from .plots import plot_sensitivity
from .schema import ViolenceScenario, load_violence_scenario

__all__ = ["ViolenceScenario", "load_violence_scenario", "run_violence", "ViolenceResults",
           "sensitivity_grid", "plot_sensitivity", "single_run", "generate_history", "History",
           "People", "check_targets"]
