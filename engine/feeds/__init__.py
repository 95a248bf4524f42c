"""Feed transports: the threads that read market data in and hand it to the FeedActor.

Edge modules (threads, files, sockets). Each source decodes with the pure
codecs of :mod:`engine.market` and talks to its owner only through a
:class:`~engine.feeds.base.FeedSink`; none of them knows pykka.

* :mod:`engine.feeds.replay` — a recorded file, paced or as fast as possible.
* :mod:`engine.feeds.binance` — one combined-stream connection to Binance.
"""

from engine.feeds.base import FeedShared, FeedSink, FeedSource

__all__ = ["FeedShared", "FeedSink", "FeedSource"]
