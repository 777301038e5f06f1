"""A circuit breaker per registry: stop asking a registry that keeps failing, probe it later.

Closed: queries go through; ``failures`` unanswered queries in a row open it. Open: queries fail
at once, without waiting out a timeout, for ``reset_s``. Half-open: one probe goes through; its
success closes the breaker, its failure opens it again. State is per process, and runs on the
event loop's thread only, so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.reset_s, self._clock = failures, reset_s, clock
        self.state: BreakerState = "closed"
        self._failed = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether a query may go to the registry now."""
        if self.state == "open":
            if self._clock() - self._opened_at < self.reset_s:
                return False
            self.state = "half_open"
        if self.state == "half_open":
            if self._probing:
                return False  # one probe at a time
            self._probing = True
        return True

    def succeeded(self) -> None:
        self.state, self._failed, self._probing = "closed", 0, False

    def failed(self) -> None:
        self._failed += 1
        if self.state == "half_open" or self._failed >= self.failures:
            self.state, self._opened_at, self._probing = "open", self._clock(), False

    def abandoned(self) -> None:
        """The query was cancelled before it ended: it proves nothing either way."""
        self._probing = False
