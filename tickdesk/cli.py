"""The ``tickdesk`` command line.

Edge module. ``tickdesk run`` starts the daemon and logs one line with the
WebSocket URL; SIGINT or SIGTERM closes every client with 1001, stops every
actor explicitly (pykka's threads would make an atexit-based stop hang) and
exits 0. A bad configuration exits with status 2 and a message naming the key;
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
from urllib.parse import urlencode

from engine.config import Config
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


def _load(path: str | None) -> Config:
    from engine.config import load_config

    if path is None:
        if os.path.exists("config.toml"):
            return load_config("config.toml")
        return Config()
    return load_config(path)


def _cluster_overrides(cfg: Config, args: argparse.Namespace) -> Config:
    """``--role`` / ``--redis-url`` over the file's ``[cluster]`` (validated again)."""
    from dataclasses import replace

    from engine.config import ClusterConfig

    role = getattr(args, "role", None) or cfg.cluster.role
    url = getattr(args, "redis_url", None) or cfg.cluster.redis_url
    if (role, url) == (cfg.cluster.role, cfg.cluster.redis_url):
        return cfg
    if role != "all" and not url:
        raise ConfigError("cluster.redis_url", f"is required when cluster.role = {role!r}")
    return replace(cfg, cluster=ClusterConfig(role=role, redis_url=url))


def _setup_logging(cfg: Config) -> None:
    from engine.logs import setup_logging

    setup_logging(cfg.log.level, cfg.log.format, secrets=[a.token for a in cfg.accounts])


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
        cfg = _cluster_overrides(cfg, args)
    except ConfigError as exc:
        print(f"tickdesk: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(cfg)
    from tickdesk.app import Engine

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
        engine.start()
    except StoreInUse as exc:
        print(f"tickdesk: {exc}", file=sys.stderr)
        engine.stop()
        return EXIT_STORE_IN_USE
    except (StoreError, sqlite3.Error) as exc:
        text = str(exc)
        if cfg.store.path not in text:
            text = f"cannot open the store {cfg.store.path!r}: {text}"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickdesk",
        description="Real-time paper-trading engine: market feed, paper accounts, "
        "advanced orders, WebSocket push.",
    )
    parser.add_argument("--version", action="version", version=f"tickdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", metavar="PATH",
                     help="configuration file (default: ./config.toml if present, "
                          "else built-in defaults)")
    run.add_argument("--role", choices=("all", "engine", "gateway"),
                     help="override cluster.role: one process (all), or the engine or a "
                          "gateway of a cluster over Redis (docs/scaling.md)")
    run.add_argument("--redis-url", metavar="URL", help="override cluster.redis_url")
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
