"""Run profiles: the default, the environment variable, the explicit name and bad names."""

from __future__ import annotations

import dataclasses

import pytest

from cnncourse.profiles import PROFILE_ENV, PROFILES, Profile, get_profile

pytestmark = pytest.mark.usefixtures("clean_env")


def test_the_profiles_are_full_and_smoke() -> None:
    assert PROFILES == ("full", "smoke")
    assert PROFILE_ENV == "CNNCOURSE_PROFILE"


def test_default_is_full_when_nothing_is_set() -> None:
    profile = get_profile()
    assert profile == Profile("full")
    assert not profile.is_smoke
    assert str(profile) == "full"


@pytest.mark.parametrize("value", ["smoke", "SMOKE", "  smoke\n"])
def test_environment_variable_selects_the_profile(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(PROFILE_ENV, value)
    profile = get_profile()
    assert profile.name == "smoke"
    assert profile.is_smoke


def test_environment_variable_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert get_profile().name == "full"


@pytest.mark.parametrize(("env", "name"), [("smoke", "full"), ("full", "smoke")])
def test_explicit_name_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, name: str
) -> None:
    monkeypatch.setenv(PROFILE_ENV, env)
    assert get_profile(name).name == name


def test_explicit_name_overrides_an_invalid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "bogus")
    assert get_profile("smoke").name == "smoke"


def test_pick_returns_the_value_for_the_profile() -> None:
    assert Profile("full").pick(60_000, 600) == 60_000
    assert Profile("smoke").pick(60_000, 600) == 600
    full_value, smoke_value = object(), object()
    assert get_profile("smoke").pick(full_value, smoke_value) is smoke_value
    assert get_profile("full").pick(full_value, smoke_value) is full_value


def test_profile_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Profile("full").name = "smoke"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["fast", "", "smoke-test"])
def test_invalid_explicit_name_names_the_value_and_the_choices(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        get_profile(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "full" in message and "smoke" in message
    assert "PROFILE parameter" in message


@pytest.mark.parametrize("bad", [1, 2.0, ["smoke"]])
def test_non_string_name_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="full, smoke"):
        get_profile(bad)  # type: ignore[arg-type]


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "turbo")
    with pytest.raises(ValueError) as info:
        get_profile()
    message = str(info.value)
    assert "'turbo'" in message
    assert PROFILE_ENV in message
    assert "full, smoke" in message


def test_empty_profile_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNCOURSE_PROFILE", "")
    assert get_profile().name == "full"
