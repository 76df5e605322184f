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
from .experiment import Results, run  # noqa: E402
from .experiment import compare  # noqa: E402
from .experiment import sweep  # noqa: E402
from .model import Model  # noqa: E402

__all__ = ["Scenario", "ScenarioError", "load_scenario", "run", "Results", "Model", "__version__"]
