"""
The SMSC core: accounts, binds and quotas, throttles, the message store and
lifecycle, receipts, and the delivery router, one instance per cluster
(:class:`smsc_sim.core.smsc.SMSCCore`).
"""
