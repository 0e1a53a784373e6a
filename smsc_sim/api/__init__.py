"""
The HTTP control and inspection API, and the Prometheus metrics.

:func:`smsc_sim.api.service.add_api` puts it in a simulator's service tree;
:class:`smsc_sim.api.app.ControlAPI` is the resource on its own (for
``StubTreq``).  The routes are described in ``openapi.yaml`` and ``docs/api.md``.
"""
