import pytest


@pytest.fixture(scope="session")
def smsc_sim_options(smsc_sim_options):
    # this project's account, on top of the plugin's options (seed 7 from pytest.ini)
    return {**smsc_sim_options, "accounts": [("esme1", "secret1")]}
