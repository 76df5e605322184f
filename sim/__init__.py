"""crisis-sim: discrete-event simulation of crisis-response capacity.

For notebooks::

    import sim
    s = sim.load_scenario("scenarios/validation/mmc.yaml")
    res = sim.run(s, replications=10, seed=1)
    res.calls      # one row per call
    res.summary    # KPI, mean, 95% CI
"""
__version__ = "0.1.0"

from .scenario import Scenario, ScenarioError, load_scenario  # noqa: E402
from .experiment import Results, compare, run, sweep  # noqa: E402
from .model import Model  # noqa: E402
from . import plots  # noqa: E402
from . import optimize  # noqa: E402  (callable: sim.optimize(scenario, targets, out))
from .violence import load_violence_scenario, plot_sensitivity, run_violence, sensitivity_grid  # noqa: E402
from .fromdata import from_cad  # noqa: E402

__all__ = ["Scenario", "ScenarioError", "load_scenario", "run", "compare", "sweep", "Results", "Model",
           "plots", "load_violence_scenario", "run_violence", "sensitivity_grid", "plot_sensitivity",
           "from_cad", "__version__"]
