"""Times on the dashboard in the unit a person reads them in, in the console's language."""

from __future__ import annotations

import pytest

from miaopi.console.pages import duration


@pytest.mark.parametrize(
    ("seconds", "lang", "shown"),
    [
        (0.314, "zh", "0.31秒"),
        (0.314, "en", "0.31 sec"),
        (750, "zh", "12.5分钟"),
        (3 * 3600, "en", "3 hr"),
        (2.5 * 86400, "zh", "2.5天"),
        (None, "en", "—"),
    ],
)
def test_a_time_is_said_in_its_own_unit(seconds: float | None, lang: str, shown: str) -> None:
    assert duration(seconds, lang) == shown
