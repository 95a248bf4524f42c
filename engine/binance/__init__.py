"""Binance Spot compatibility: the pure rules of the Binance-shaped REST API and streams.

Pure core (no threads, sockets or clocks; time is passed in): request
signing, listen keys, Binance's error codes, the endpoint table that both the
router and ``/openapi.json`` read, and the translation between Binance's
parameters and shapes and tickdesk's commands and messages. The HTTP side is
:mod:`engine.server.binance_api`.

Streams: stream names, paths and the live subscription requests
(:mod:`engine.binance.stream_names`), every stream and user-data payload
(:mod:`engine.binance.stream_payloads`), which user-data events a settled
outcome makes (:mod:`engine.binance.user_stream`), and the WebSocket API's
user-data slice (:mod:`engine.binance.ws_api`).
"""
