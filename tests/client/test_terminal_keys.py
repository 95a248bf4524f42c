"""The keyboard of ``tickdesk watch``: keys from a real terminal (a pty), in
cbreak mode while the view runs, the terminal's modes given back after."""

from __future__ import annotations

import os
import pty
import termios
from collections.abc import Iterator

import pytest

from tests.conftest import timeout
from tickdesk.client.terminal import Keyboard


@pytest.fixture
def tty_pair() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


class _Stream:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def test_keys_arrive_one_by_one_and_the_mode_is_restored(tty_pair: tuple[int, int]) -> None:
    master, slave = tty_pair
    before = termios.tcgetattr(slave)
    with Keyboard(_Stream(slave)) as keyboard:
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        assert during[3] & termios.ISIG  # Ctrl-C still interrupts
        assert keyboard.read(0) == []
        os.write(master, b"f/eth\x7f\x1b[Aq")  # an arrow key is one key
        expected = ["f", "/", "e", "t", "h", "\x7f", "\x1b[A", "q"]
        keys: list[str] = []
        while len(keys) < len(expected):
            got = keyboard.read(timeout(5))
            assert got, keys  # nothing within the wait
            keys += got
        assert keys == expected
    assert termios.tcgetattr(slave) == before


def test_no_terminal_no_keys(tmp_path: os.PathLike[str]) -> None:
    with open(os.path.join(tmp_path, "f"), "w") as f, Keyboard(f) as keyboard:
        assert keyboard.read(0) == []
