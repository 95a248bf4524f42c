"""Binance Spot compatibility: the pure rules of the Binance-shaped REST API.

Pure core (no threads, sockets or clocks; time is passed in): request
signing, listen keys, Binance's error codes, the endpoint table that both the
router and ``/openapi.json`` read, and the translation between Binance's
parameters and shapes and tickdesk's commands and messages. The HTTP side is
:mod:`engine.server.binance_api`.
"""
