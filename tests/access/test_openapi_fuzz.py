"""schemathesis against the access service's OpenAPI document: no input may cause a server error.

Every operation of ``/api/openapi.json`` gets generated requests, valid and
invalid (schemathesis' positive and negative modes), from a fixed seed and a
bounded number per operation: once with a library reader's key and once with
staff keys (the staff key in the header, the fixity key in the fixity API's
query).  The only check is ``not_a_server_error``.  The strategies come from
schemathesis' Python API (``as_strategy``) under a plain ``@given``.
"""

from __future__ import annotations

import contextlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from preservation.access.web.app import create_app
from preservation.access.web.auth import ServiceConfig

from .conftest import SECRET
from .world import FIXITY_KEY

EXAMPLES = 60  # per operation, mode and user: the whole module stays well under 90 s
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def operations(world):
    api = schemathesis.openapi.from_asgi("/api/openapi.json",
                                         create_app(world.repo, ServiceConfig(secret=SECRET, cookie_secure=False)))
    return [result.ok() for result in api.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("user", ["alice", "carol"])
def test_no_input_causes_a_server_error(world, user):
    ops = operations(world)
    assert {op.path for op in ops} >= {"/api/v1/requests", "/api/v2/file/"}
    negative_runs = 0
    for operation in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @FUZZ
            @given(case=operation.as_strategy(mode))
            def check(case) -> None:
                if operation.path.startswith("/api/v2/"):
                    if user == "carol":
                        case.query = {**(case.query or {}), "username": "carol", "api_key": world.tokens[FIXITY_KEY]}
                    case.call_and_validate(checks=[not_a_server_error])
                else:
                    case.call_and_validate(headers=world.auth(user), checks=[not_a_server_error])

            if mode is GenerationMode.POSITIVE:
                check()
                continue
            # Unsatisfiable: every request this operation's schema lets be sent is valid (e.g. GET /me)
            with contextlib.suppress(Unsatisfiable):
                check()
                negative_runs += 1
    assert negative_runs >= len(ops) // 2
