"""``bertkit serve``'s safe defaults, as the command hands them to the server: bind
127.0.0.1 unless ``--host`` says otherwise; the API key from ``--api-key``, else
``$BERTKIT_API_KEY``, else none (no model is loaded: the server is stood in for)."""

from __future__ import annotations

from typing import Any

import pytest

import bertkit.server
from bertkit.cli import main


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(bertkit.server, "serve",
                        lambda models, **options: seen.update(options, models=models))
    monkeypatch.delenv("BERTKIT_API_KEY", raising=False)
    return seen


def test_binds_this_machine_only_and_needs_no_key_by_default(started):
    assert main(["serve", "--model", "m=some/dir"]) == 0
    assert started["host"] == "127.0.0.1" and started["api_key"] is None
    assert [name for name, _ in started["models"]] == ["m"]


def test_the_key_comes_from_the_flag_then_the_environment(started, monkeypatch):
    monkeypatch.setenv("BERTKIT_API_KEY", "from-env")
    assert main(["serve", "--model", "some/dir", "--host", "0.0.0.0"]) == 0
    assert started["host"] == "0.0.0.0" and started["api_key"] == "from-env"
    assert main(["serve", "--model", "some/dir", "--api-key", "from-flag"]) == 0
    assert started["api_key"] == "from-flag"
