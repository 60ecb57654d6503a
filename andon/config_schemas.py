"""Imports every module that registers Hydra schemas, so register_configs() sees them all."""
import andon.dag.run_config  # noqa: F401
import andon.datasets.spec  # noqa: F401
import andon.gates.spec  # noqa: F401
import andon.models.cascade_configs  # noqa: F401
import andon.models.train_config  # noqa: F401
import andon.models.tune  # noqa: F401
import andon.simulation.sim_config  # noqa: F401
import andon.test_suites.suite_config  # noqa: F401
