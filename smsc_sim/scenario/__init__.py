"""
Scenarios: the data that decides how the simulated SMSC answers.

- :mod:`smsc_sim.scenario.loader` finds and validates scenario YAML files
  (:func:`~smsc_sim.scenario.loader.load_scenario`, ``ScenarioError``);
- :mod:`smsc_sim.scenario.model` holds the frozen values;
- :mod:`smsc_sim.scenario.engine` runs one (:class:`ScenarioRuntime`,
  the :class:`~smsc_sim.contracts.IScenario` the core asks for verdicts);
- :mod:`smsc_sim.scenario.throttle` has the token bucket.

The format is documented in ``docs/scenarios.md``.
"""
