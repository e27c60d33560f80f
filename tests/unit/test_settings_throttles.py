"""The throttle settings: each CHATCORE_ variable reaches its Policy field, and the
defaults are the documented ones (OWASP ASVS v4.0.3 V2.2.1 for the account bound)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.deps import Policy
from entrypoints.settings import Settings, SettingsError

SECONDS = {
    "CHATCORE_LOGIN_FAILURE_WINDOW": "login_failure_window",
    "CHATCORE_LOGIN_BACKOFF_SECONDS": "login_backoff",
    "CHATCORE_LOGIN_BACKOFF_MAX_SECONDS": "login_backoff_max",
}
COUNTS = {
    "CHATCORE_LOGIN_FREE_FAILURES": "login_free_failures",
    "CHATCORE_LOGIN_FAILURES_PER_ACCOUNT": "login_failures_per_account",
    "CHATCORE_LOGIN_FAILURES_PER_ADDRESS": "login_failures_per_address",
    "CHATCORE_REGISTRATIONS_PER_ADDRESS": "registrations_per_address",
    "CHATCORE_CHATS_PER_USER": "chats_per_user",
}


def test_the_defaults_are_the_policys_and_the_documented_ones() -> None:
    assert Settings().policy() == Policy()
    policy = Policy()
    assert policy.login_failures_per_account == 100  # ASVS V2.2.1: at most 100 an hour
    assert policy.login_failure_window == timedelta(hours=1)
    assert (policy.login_free_failures, policy.login_backoff, policy.login_backoff_max) == (
        5,
        timedelta(seconds=1),
        timedelta(minutes=15),
    )
    assert policy.login_failures_per_address == 300
    assert (policy.registrations_per_address, policy.chats_per_user) == (20, 100)
    assert policy.creation_window == timedelta(hours=1)


@settings(max_examples=50)
@given(values=st.fixed_dictionaries({k: st.integers(1, 10**6) for k in {**SECONDS, **COUNTS}}))
def test_every_throttle_setting_reaches_the_policy(values: dict[str, int]) -> None:
    policy = Settings.from_env({k: str(v) for k, v in values.items()}).policy()
    for variable, field in SECONDS.items():
        assert getattr(policy, field) == timedelta(seconds=values[variable])
    for variable, field in COUNTS.items():
        assert getattr(policy, field) == values[variable]


@pytest.mark.parametrize("variable", [*SECONDS, *COUNTS])
@pytest.mark.parametrize("raw", ["0", "-1", "ten", ""])
def test_a_throttle_setting_must_be_a_positive_whole_number(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: raw})
