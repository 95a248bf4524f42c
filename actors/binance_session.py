"""BinanceSessionActor: one per client of Binance's stream paths; owns that session.

Runs in its own pykka thread, like a :class:`~actors.connection.ConnectionActor`
and with the same bounds: the I/O thread hands it complete frames through the
same :class:`~actors.connection.InboundGate` (at most 64 waiting, then the
socket is not read), every frame first takes a token of the client's rate
limiter (``server.rate_limit_per_s`` / ``rate_limit_burst``; a frame over the
limit is refused, a client refused more than ``rate_limit_burst`` times in
10 s is closed 1008), and what it sends goes through the client's bounded
channel (slow-client policy of our own endpoint). A separate actor rather
than a mode of ConnectionActor because the two speak different protocols:
this one knows only Binance's live requests (:mod:`engine.binance.stream_names`)
and never takes an account command.

The session joins the hub in the I/O thread, before the 101 is answered
(:func:`join`): the streams its path names and, for a listen key, the
account's user data stream. Market events then reach its channel through the
bus from the FeedActor and the PortfolioActor (klines), user data events from
the OrderMonitorActor (directly in one process; on a gateway from its Redis
reader, :mod:`engine.server.redis_bus`); none passes through this actor. A
live request (``SUBSCRIBE``, ``UNSUBSCRIBE``,
``LIST_SUBSCRIPTIONS``) gets exactly one answer; a refused one changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from actors.base import TickdeskActor
from actors.connection import InboundGate, SessionServices
from actors.messages import ClientFrame, ClientGone
from engine.binance import stream_payloads as bp
from engine.binance import ws_api
from engine.binance.stream_names import (
    MAX_STREAMS,
    Method,
    StreamError,
    StreamErrorCode,
    StreamKind,
    StreamName,
    StreamRequest,
    StreamRoute,
    decode_request,
)
from engine.binance.ws_api import WsApiCode, WsApiError, WsApiMethod, WsApiRequest
from engine.protocol.enums import CloseCode
from engine.rate_limit import RateLimiter, Verdict
from engine.server.channel import Channel
from engine.server.hub import UserStream

__all__ = ["ApiKeyLookup", "BinanceSessionActor", "check_streams", "join"]

#: ``api_key -> (account, api_secret)`` of a configured key, else None.
ApiKeyLookup = Callable[[str], tuple[str, str] | None]

log = logging.getLogger("tickdesk.binance")


def check_streams(streams: Collection[StreamName], known_symbol: Callable[[str], bool],
                  kinds: Collection[StreamKind]) -> str | None:
    """Why these streams cannot be served (an unknown symbol, a kind the engine
    does not build), or None."""
    for s in streams:
        if s.kind not in kinds:
            return f"{s.name}: {s.kind} streams are not served"
        if not known_symbol(s.symbol):
            return f"{s.name}: symbol {s.symbol} is not served by this feed"
    return None


def join(channel: Channel, services: SessionServices, route: StreamRoute,
         account: str | None) -> None:
    """I/O thread, before the 101: the channel joins the hub with its path's
    streams and, with ``account`` (its listen key's), that account's user data."""
    hub = services.hub
    hub.add(channel)
    for s in route.streams:
        hub.subscribe_stream(channel, s.name, s.symbol, route.combined)
    if account is not None:
        stream = route.listen_key if route.combined else None
        hub.add_user_stream(UserStream(channel, stream=stream), account)


class BinanceSessionActor(TickdeskActor):
    def __init__(self, channel: Channel, services: SessionServices, route: StreamRoute,
                 gate: InboundGate | None, kinds: Collection[StreamKind],
                 api_keys: ApiKeyLookup | None = None) -> None:
        super().__init__(f"binance-{channel.conn_id}")
        self._ch = channel
        self._svc = services
        self._combined = route.combined
        self._ws_api = route.ws_api
        self._api_keys = api_keys
        #: The WebSocket API's user data subscription of this connection (one at most).
        self._subscription: int | None = None
        self._next_subscription = 0
        self._kinds = frozenset(kinds)
        self._gate = gate
        self._limiter = RateLimiter(services.rate_limit_per_s, services.rate_limit_burst)
        self._abusive = False
        self.handlers = {ClientFrame: self._on_frame, ClientGone: self._on_gone}

    def cleanup(self) -> None:
        self._svc.hub.remove(self._ch)

    def _on_gone(self, _msg: ClientGone) -> None:
        self.stop()

    def _on_frame(self, msg: ClientFrame) -> None:
        try:
            if not self._abusive:
                self._admit(msg)
        finally:
            if self._gate is not None:
                self._gate.leave()

    def _admit(self, msg: ClientFrame) -> None:
        verdict = self._limiter.check(self._svc.monotonic())
        if verdict is Verdict.CLOSE:
            self._abusive = True
            log.warning("binance session %s: closed for exceeding the rate limit",
                        self._ch.conn_id)
            self._ch.close(CloseCode.POLICY, "rate limit exceeded")
            return
        if self._ws_api:
            self._ws_api_frame(msg, verdict)
            return
        rid: Any = None
        try:
            req = decode_request(msg.data)
            rid = req.request_id
            if verdict is not Verdict.ALLOW:
                raise StreamError(StreamErrorCode.INVALID_REQUEST,
                                  "Invalid request: too many requests; slow down", rid)
            self._ch.deliver(bp.stream_answer(self._execute(req), rid))
        except StreamError as exc:
            self._ch.deliver(bp.stream_error(exc.code, exc.message,
                                             exc.request_id if exc.request_id is not None
                                             else rid))

    def _execute(self, req: StreamRequest) -> Any:
        hub = self._svc.hub
        if req.method is Method.LIST_SUBSCRIPTIONS:
            return hub.streams_of(self._ch)
        if req.method is Method.UNSUBSCRIBE:
            for s in req.streams:
                hub.unsubscribe_stream(self._ch, s.name)
            return None
        why = check_streams(req.streams, self._svc.known_symbol, self._kinds)
        if why is not None:
            raise StreamError(StreamErrorCode.INVALID_REQUEST, f"Invalid request: {why}",
                              req.request_id)
        held = set(hub.streams_of(self._ch))
        if len(held | {s.name for s in req.streams}) > MAX_STREAMS:
            raise StreamError(StreamErrorCode.INVALID_REQUEST,
                              f"Invalid request: at most {MAX_STREAMS} streams per "
                              "connection", req.request_id)
        for s in req.streams:
            hub.subscribe_stream(self._ch, s.name, s.symbol, self._combined)
        return None

    # -- the WebSocket API (/ws-api/v3) -------------------------------------------

    def _ws_api_frame(self, msg: ClientFrame, verdict: Verdict) -> None:
        rid: Any = None
        try:
            req = ws_api.decode(msg.data)
            rid = req.request_id
            if verdict is not Verdict.ALLOW:
                raise WsApiError(WsApiCode.UNSUPPORTED_OPERATION,
                                 "Too many requests; slow down.", rid, status=429)
            result = self._ws_api_execute(req)
            self._ch.deliver(bp.raw(ws_api.answer(rid, result)))
        except WsApiError as exc:
            if exc.request_id is None:
                exc.request_id = rid
            self._ch.deliver(bp.raw(ws_api.failure(exc)))

    def _ws_api_execute(self, req: WsApiRequest) -> Any:
        now = self._svc.now_ms()
        rid = req.request_id
        if req.method is WsApiMethod.PING:
            return {}
        if req.method is WsApiMethod.TIME:
            return {"serverTime": now}
        if req.method is WsApiMethod.SUBSCRIPTIONS:
            return ([] if self._subscription is None
                    else [{"subscriptionId": self._subscription}])
        if req.method is WsApiMethod.UNSUBSCRIBE:
            wanted = req.params.get("subscriptionId", self._subscription)
            if self._subscription is None or wanted != self._subscription:
                raise WsApiError(WsApiCode.BAD_PARAMETER,
                                 f"No subscription with id {wanted!r}.", rid)
            self._svc.hub.remove_user_stream(self._ch)
            self._subscription = None
            return {}
        # userDataStream.subscribe.signature
        if self._subscription is not None:
            raise WsApiError(WsApiCode.UNSUPPORTED_OPERATION,
                             "One user data subscription per connection.", rid)
        key = req.params.get("apiKey")
        found = (self._api_keys(key) if self._api_keys is not None and isinstance(key, str)
                 else None)
        if found is None:
            raise WsApiError(WsApiCode.REJECTED_API_KEY, "Invalid API-key, IP, or "
                             "permissions for action.", rid, status=401)
        account, secret = found
        ws_api.check_signature(req.params, secret, now, rid)
        sub = self._next_subscription
        self._next_subscription += 1
        self._svc.hub.add_user_stream(UserStream(self._ch, subscription_id=sub), account)
        self._subscription = sub
        return {"subscriptionId": sub}
