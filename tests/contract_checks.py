"""The schemathesis checks that hold the server to its OpenAPI document, in both
directions, shared by the in-process test (tests/unit/test_openapi.py) and the fuzzing of
a live server (tests/integration/test_docs.py).

A request that fits the document must be accepted and one that does not must be refused
(schemathesis's positive_data_acceptance and negative_data_rejection). The one exception
is a 400 made only of messages from ``openapi_notes.DOMAIN_RULES``, the rules no schema
can state (a taken username, an unknown participant, a common password, ...), each
named there with why; nothing here lists its own.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.http.openapi_notes import domain_rule


def domain_rejection(case: schemathesis.Case, status: int, body: Any) -> bool:
    """Whether this answer is a 400 of the operation's domain rules and nothing else."""
    if status != 400 or not isinstance(body, dict) or not body:
        return False
    operation = str(case.operation.definition.raw.get("operationId"))
    return all(
        isinstance(messages, list)
        and messages
        and all(
            isinstance(message, str) and domain_rule(operation, field, message) is not None
            for message in messages
        )
        for field, messages in body.items()
    )


def positive_data_acceptance_beyond_domain_rules(
    ctx: Any, response: Any, case: schemathesis.Case
) -> bool | None:
    """positive_data_acceptance, but for a refusal that only DOMAIN_RULES explain."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if domain_rejection(case, response.status_code, body):
        return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def negative_data_rejection_beyond_forms(
    ctx: Any, response: Any, case: schemathesis.Case
) -> bool | None:
    """negative_data_rejection, but not for form bodies: in a form every value is text
    and a lone value is a one-item list, so a schema violation by *type* (a number where
    a list goes) cannot be sent, and what schemathesis sends instead is a valid form.
    The form parser's refusals are held to the JSON parser's by test_api_bodies.py."""
    if case.media_type in FORM_TYPES:
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


# What "answers as documented" means: no 5xx; a documented status code, content type,
# required headers and body schema; every request the document allows accepted (domain
# rules aside) and every one it forbids refused. Path ids out of range answer 404, which
# negative_data_rejection counts as a refusal by default (as it does 401, 403 and 409).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance_beyond_domain_rules,
    negative_data_rejection_beyond_forms,
]
