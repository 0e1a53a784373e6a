"""
smsc-sim: an SMPP 3.4 SMSC simulator modelled on the Vonage (ex-Nexmo) SMPP platform.

One engine runs as a twistd plugin (``twistd -n smsc-sim``), as an
integration-test fixture, and as a CI service container.
"""

__version__ = "0.1.0"
