"""Binance compatibility: Binance's names, shapes and rules, spoken on our port.

Pure core. Each module holds one part: stream names and the live
subscription requests (:mod:`engine.binance.stream_names`), the stream and
user-data payloads (:mod:`engine.binance.stream_payloads`).
"""
