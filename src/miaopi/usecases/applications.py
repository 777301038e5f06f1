"""An application as submitted, checked for what HTTP's schema cannot know: who may apply for
which employer, which business types the rules define, and which claims each one needs."""

from __future__ import annotations

from miaopi.domain import Application
from miaopi.eligibility.ruleset import RuleBook
from miaopi.records.clients import Client
from miaopi.usecases.errors import Forbidden, InvalidInput


def check_application(application: Application, client: Client, rulebook: RuleBook) -> Application:
    """The application if this client may submit it and it makes the claims its type needs
    (``claims`` in the type's rule file: each group, one of its claims at least)."""
    if client.role == "employer" and application.employer_uscc != client.uscc:
        raise Forbidden("an employer may only apply for its own USCC")
    groups = rulebook.required_claims(application.business_type)
    if groups is None:
        known = ", ".join(rulebook.business_types())
        raise InvalidInput(["body", "business_type"], f"unknown business type; one of: {known}")
    for group in groups:
        if not any(application.claims.get(claim) for claim in group):
            if len(group) == 1:
                message = f"required for {application.business_type}"
            else:
                message = f"{application.business_type} needs {' or '.join(group)}"
            raise InvalidInput(["body", "claims", group[0]], message)
    return application
