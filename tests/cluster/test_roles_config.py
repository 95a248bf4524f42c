"""cluster.role and cluster.redis_url: checked before anything starts."""

from __future__ import annotations

import pytest

from engine.config import parse_config
from engine.errors import ConfigError
from tickdesk.cli import main


def test_one_process_is_the_default() -> None:
    cfg = parse_config({})
    assert (cfg.cluster.role, cfg.cluster.redis_url) == ("all", "")


@pytest.mark.parametrize("role", ["engine", "gateway"])
def test_a_cluster_role_needs_a_redis_url(role: str) -> None:
    with pytest.raises(ConfigError, match=r"cluster\.redis_url"):
        parse_config({"cluster": {"role": role}})
    cfg = parse_config({"cluster": {"role": role, "redis_url": "redis://127.0.0.1:6379/0"}})
    assert cfg.cluster.role == role


def test_a_bad_role_or_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.role"):
        parse_config({"cluster": {"role": "both"}})
    with pytest.raises(ConfigError, match=r"cluster\.redis_url"):
        parse_config({"cluster": {"redis_url": "http://127.0.0.1:6379"}})


def test_run_with_a_role_and_no_redis_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--role", "gateway"]) == 2
    assert "cluster.redis_url" in capsys.readouterr().err
