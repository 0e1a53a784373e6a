"""``python -m smsc_sim.load``: the ``smsc-sim-load`` command."""

from smsc_sim.load.cli import main

main()
