"""The ``tickdesk`` command line.

Edge module. ``tickdesk run`` starts the daemon and logs one line with the
WebSocket URL. Its configuration is layered by
:func:`engine.config_layers.load_effective`: flags (``--host``, ``--port``,
``--store``, ``--feed``) over ``TICKDESK_<SECTION>__<KEY>`` variables over the
file (``--config``, else ``./config.toml`` when present) over the defaults;
``--print-config`` prints the result with each value's origin and exits 0.
SIGINT or SIGTERM closes every client with 1001, stops every actor explicitly
(pykka's threads would make an atexit-based stop hang) and exits 0. A bad
configuration, from any layer, exits with status 2 and one line naming the key
and its origin;
so does a store that another daemon holds (``store <path> is in use by pid
N``). A store that cannot be opened, or fails its integrity check, exits 1
with a message naming what is wrong (table, row, field), before listening.

``SIGXFSZ`` is ignored: a process file-size limit (``ulimit -f``) then makes
a store write fail with an I/O error, answered ``STORE_UNAVAILABLE``, instead
of killing the daemon.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn
from urllib.parse import urlencode

from engine.config import Config
from engine.config_layers import Effective
from engine.errors import ConfigError
from engine.version import __version__
from tickdesk.client.cli import register as register_client_commands

__all__ = ["main"]

log = logging.getLogger("tickdesk")

EXIT_CONFIG = 2
#: Another process holds the store's owner lock (like a configuration error:
#: retrying does not help until the operator acts).
EXIT_STORE_IN_USE = 2
EXIT_FAILED = 1


#: ``tickdesk run`` flags that set a configuration key (precedence flag > env > file).
RUN_FLAGS: dict[str, str] = {
    "host": "server.host",
    "port": "server.port",
    "store": "store.path",
    "feed": "feed.source",
    "role": "cluster.role",
    "redis_url": "cluster.redis_url",
}


def _load(args: argparse.Namespace) -> Effective:
    """The effective configuration of ``tickdesk run``: ``--config`` (else
    ``./config.toml`` when present), ``TICKDESK_*__*`` variables, flags."""
    from engine.config_layers import Override, load_effective

    path: str | None = args.config
    if path is None and os.path.exists("config.toml"):
        path = "config.toml"
    flags = [Override(key, getattr(args, name), f"flag --{name.replace('_', '-')}")
             for name, key in RUN_FLAGS.items() if getattr(args, name) is not None]
    return load_effective(path, os.environ, flags, os.getcwd())


def _setup_logging(cfg: Config) -> None:
    from engine.logs import setup_logging

    secrets = [s for a in cfg.accounts for s in (a.token, a.api_secret) if s]
    setup_logging(cfg.log.level, cfg.log.format, secrets=secrets)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        effective = _load(args)
    except ConfigError as exc:
        print(f"tickdesk: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    cfg = effective.config
    if args.print_config:
        from engine.config_render import render_effective

        sys.stdout.write(render_effective(effective, {
            f"tickdesk {__version__}": "effective configuration",
            "precedence": "flag > env (TICKDESK_<SECTION>__<KEY>) > file > default",
        }))
        return 0
    _setup_logging(cfg)
    if effective.origin("store.path") == "default" and os.path.exists("tickdesk.db"):
        log.warning("./tickdesk.db is a store of an older tickdesk, whose default store was "
                    "in the current directory; this one uses %s. To keep using the old one: "
                    "tickdesk run --store tickdesk.db", cfg.store.path)
    from tickdesk.app import Engine, make_store_directory

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    import sqlite3

    from redis import RedisError

    from engine.store import StoreError
    from engine.store_lock import StoreInUse

    t0 = time.monotonic()
    engine = Engine(cfg)
    try:
        if effective.origin("store.path") == "default":
            make_store_directory(engine.store_path)
        engine.start()
    except StoreInUse as exc:
        print(f"tickdesk: {exc}", file=sys.stderr)
        engine.stop()
        return EXIT_STORE_IN_USE
    except (StoreError, sqlite3.Error) as exc:
        text = str(exc)
        if engine.store_path not in text:
            text = f"cannot open the store {engine.store_path!r}: {text}"
        print(f"tickdesk: {text}", file=sys.stderr)
        engine.stop()
        return EXIT_FAILED
    except OSError as exc:
        print(f"tickdesk: cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror}",
              file=sys.stderr)
        engine.stop()
        return EXIT_FAILED
    except RedisError as exc:
        print(f"tickdesk: cannot reach Redis at {cfg.cluster.redis_url}: {exc}", file=sys.stderr)
        engine.stop()
        return EXIT_FAILED
    log.info("tickdesk %s listening on %s (feed %s, started in %.0f ms)", __version__,
             engine.url, cfg.feed.source, (time.monotonic() - t0) * 1000)
    print(ready_message(cfg, engine.url), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        log.info("shutting down")
        engine.stop()
        log.info("stopped")
    return 0


def ready_message(cfg: Config, ws_url: str) -> str:
    """What to open, printed on stdout (never logged): with exactly one
    account the URLs carry its token, as Jupyter's do."""
    http_url = ws_url.replace("ws://", "http://", 1).split("/api/", 1)[0] + "/"
    suffix = ""
    note = ""
    if len(cfg.accounts) == 1:
        suffix = "?" + urlencode({"token": cfg.accounts[0].token})
    elif cfg.accounts:
        note = f"\n    (sign in with the token of one of the {len(cfg.accounts)} accounts)"
    return (f"\n    tickdesk is running. Open the dashboard:\n        {http_url}{suffix}\n"
            f"    or connect a WebSocket client to:\n        {ws_url}{suffix}{note}\n")


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (what is wrong, and where the help
    is) and exit status 2, like every configuration error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tickdesk",
        description="Real-time paper-trading engine: market feed, paper accounts, "
        "advanced orders, WebSocket push.",
    )
    parser.add_argument("--version", action="version", version=f"tickdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", metavar="PATH",
                     help="configuration file (default: ./config.toml if present, "
                          "else built-in defaults)")
    run.add_argument("--host", metavar="HOST", help="listen address (server.host)")
    run.add_argument("--port", metavar="PORT", help="TCP port, 0 picks a free one (server.port)")
    run.add_argument("--store", metavar="PATH",
                     help="SQLite store, '' in memory (store.path; default: "
                          "$XDG_DATA_HOME/tickdesk/tickdesk.db)")
    run.add_argument("--feed", metavar="SOURCE",
                     help="simulated, replay or binance (feed.source)")
    run.add_argument("--print-config", action="store_true",
                     help="print the effective configuration (TOML) and where each value "
                          "came from, then exit")
    run.add_argument("--role", choices=("all", "engine", "gateway"),
                     help="cluster.role: one process (all), or the engine or a "
                          "gateway of a cluster over Redis (docs/scaling.md)")
    run.add_argument("--redis-url", metavar="URL",
                     help="the Redis of a cluster (cluster.redis_url)")
    run.set_defaults(func=cmd_run)
    register_client_commands(sub)
    from tickdesk.bench.command import add_arguments, cmd_bench

    bench = sub.add_parser("bench", help="measure WebSocket fan-out against an asyncio "
                                         "reference (see docs/performance.md)")
    add_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
