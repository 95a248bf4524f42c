"""tickdesk's implementation: the pure core and the I/O edges.

Users import :mod:`tickdesk` (the public surface); this package holds the
rules (``protocol``, ``trading``, ``market``, ``config``, ``money``…, pure)
and the edges that talk to the world (``server``, ``feeds``, ``store``). It
imports nothing from :mod:`actors` or :mod:`tickdesk`: the layer test
(``tests/test_layers.py``) states the allowed directions.
"""
