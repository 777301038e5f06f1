"""An application as submitted, checked for what HTTP's schema cannot know: who may apply for
which employer, and which claims each business type needs."""

from __future__ import annotations

from miaopi.domain import Application
from miaopi.records.clients import Client
from miaopi.usecases.errors import Forbidden, InvalidInput

# Claims each business type needs, any one of a group (policy.md §2).
_REQUIRED_CLAIMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "graduate": (("diploma_no",),),
    "in_service": (("diploma_no", "title_certificate_no"),),
    "overseas_returnee": (("certification_no",),),
}


def check_application(application: Application, client: Client) -> Application:
    """The application if this client may submit it and it makes the claims its type needs."""
    if client.role == "employer" and application.employer_uscc != client.uscc:
        raise Forbidden("an employer may only apply for its own USCC")
    for group in _REQUIRED_CLAIMS.get(application.business_type, ()):
        if not any(application.claims.get(claim) for claim in group):
            needed = group[0] if len(group) == 1 else " or ".join(group)
            message = (
                f"required for {application.business_type}"
                if len(group) == 1
                else f"{application.business_type} needs {needed}"
            )
            raise InvalidInput(["body", "claims", group[0]], message)
    return application
