"""crisis-sim: discrete-event simulation of crisis-response capacity.

For notebooks::

    import sim
    s = sim.load_scenario("scenarios/validation/mmc.yaml")
    res = sim.run(s, replications=10, seed=1)
    res.calls      # one row per call received after the warm-up (res.calls_all: with it)
    res.summary    # KPI, mean, 95% CI

The names below are imported on first use (PEP 562), so ``import sim`` and the command
line's start-up load no simulation, data-frame or plotting library until one is needed.
"""
from ._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the submodule that defines it (a name mapped to itself is the submodule;
# sim.optimize is callable: sim.optimize(scenario, targets, out))
_EXPORTS = {
    "Scenario": "scenario", "ScenarioError": "scenario", "load_scenario": "scenario",
    "Results": "experiment", "compare": "experiment", "run": "experiment", "sweep": "experiment",
    "Model": "model", "plots": "plots", "optimize": "optimize",
    "load_violence_scenario": "violence", "run_violence": "violence", "sensitivity_grid": "violence",
    "plot_sensitivity": "violence", "from_cad": "fromdata",
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
