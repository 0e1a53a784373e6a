"""
The Redis implementations of the cluster contracts (txredisapi, the ``redis`` extra).

Nothing here is imported by the in-memory path: txredisapi imports Twisted's
global reactor when it is imported, so it is imported only when a
``cluster_store`` is configured.
"""
