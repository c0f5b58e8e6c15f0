"""SearchOptions: one value for every retrieval option, None meaning "the default"."""

from __future__ import annotations

import pytest

from odqa.errors import OdqaError
from odqa.index.late import PlaidSettings
from odqa.retrieve.options import SearchOptions, search_options


def test_none_keeps_a_default_and_clears_what_may_be_unset() -> None:
    base = SearchOptions(fusion="rrf", device="cpu", weights=(0.7, 0.3))
    options = search_options(base, {"fusion": None, "plaid": None, "device": None})
    assert options.fusion == "rrf" and options.plaid == PlaidSettings()
    assert options.device is None and options.weights == (0.7, 0.3)


def test_settings_are_checked_by_name_and_value() -> None:
    with pytest.raises(OdqaError, match="unknown search settings"):
        search_options(None, {"fusoin": "rrf"})
    with pytest.raises(OdqaError, match="fusion must be one of"):
        search_options(None, {"fusion": "sum"})
    with pytest.raises(OdqaError, match="finite and non-negative"):
        search_options(None, {"weights": [1.0, float("nan")]})
    assert search_options(None, {"weights": [1, 2]}).weights == (1.0, 2.0)
