"""Binance stream events into one process's hub: how a payload the engine
encoded once becomes the frames of that hub's stream clients.

Edge module, called by the bus that delivers (:class:`~engine.server.bus.InProcessBus`
in the engine's actor threads; :class:`~engine.server.redis_bus.RedisBus` in a
gateway's reader thread). The payload is the engine's bytes; each hub wraps it
at most once per wrapping it has subscribers for (raw, ``{"stream", "data"}``
for a combined stream) and writes those bytes to every subscriber, so the work
per event does not depend on the number of clients beyond one ``deliver`` each.

User data events go to the account's user data streams, each wrapped as its
client asked: raw (``/ws/<listenKey>``), combined (``/stream?streams=<listenKey>``)
or as a WebSocket API subscription event (``/ws-api/v3``,
``{"subscriptionId", "event"}``), in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.binance import stream_payloads as bp
from engine.protocol.server_messages import Outgoing
from engine.server.hub import Hub, StreamMaker, UserStream

__all__ = ["publish_stream", "stream_maker", "to_user", "user_frame"]


def stream_maker(name: str, payload: bytes, conflate_key: str | None) -> StreamMaker:
    """The maker :meth:`Hub.publish_stream` calls at most once per wrapping."""
    def make(combined: bool) -> Outgoing:
        return (bp.combined(name, payload, conflate_key) if combined
                else bp.raw(payload, conflate_key))
    return make


def publish_stream(hub: Hub, name: str, payload: bytes, conflate_key: str | None) -> int:
    """One event of Binance stream ``name`` to ``hub``'s subscribers; returns how many."""
    return hub.publish_stream(name, stream_maker(name, payload, conflate_key))


def user_frame(stream: UserStream, payload: bytes) -> Outgoing:
    """One user data event, wrapped as the stream's client asked for it."""
    if stream.subscription_id is not None:
        return bp.subscription_event(stream.subscription_id, payload)
    if stream.stream is not None:
        return bp.combined(stream.stream, payload)
    return bp.raw(payload)


def to_user(hub: Hub, account: str, payloads: Sequence[bytes]) -> int:
    """``account``'s user data events, in order, to each of its user data streams
    in ``hub``; returns how many streams."""
    streams = hub.user_streams(account)
    for stream in streams:
        for payload in payloads:
            stream.channel.deliver(user_frame(stream, payload))
    return len(streams)
