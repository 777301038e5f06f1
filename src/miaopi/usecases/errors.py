"""What a use case refuses, in the user's terms; ``api/errors.py`` answers each as a problem."""

from __future__ import annotations

from collections.abc import Sequence


class UseCaseError(Exception):
    """A request refused for a reason the caller can act on."""


class Forbidden(UseCaseError):
    """The caller's role or binding does not allow this."""


class NotFound(UseCaseError):
    """Nothing of the kind within the caller's scope (whether it exists elsewhere is not said)."""


class InvalidInput(UseCaseError):
    """A field's value is not acceptable; ``loc`` names it as a validation error would."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        self.loc = list(loc)
        super().__init__(message)


class Conflict(UseCaseError):
    """The request cannot be done in the state things are in; ``slug`` says which state."""

    def __init__(self, slug: str, message: str) -> None:
        self.slug = slug
        super().__init__(message)


class IdempotencyKeyReused(UseCaseError):
    """The Idempotency-Key was used before with a different body."""


class UnsupportedDocument(UseCaseError):
    """An uploaded document whose content is not of a type the counter takes."""
