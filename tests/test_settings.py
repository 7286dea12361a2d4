"""Configuration: `.env` parsing, precedence, validation messages that name the variable, production rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import (
    SETTING_DOCS,
    ConfigurationError,
    Settings,
    inspect_settings,
    load_settings,
    qr_secrets,
    read_dotenv,
)

# HMAC keys of 32+ characters, as the settings require.
JWT_KEY = "Zq3vN8pL2xT7mR5kW9cB4hJ6fD1sG0aYeUjw07"
QR_KEY = "Hn5tR2wQ8zK4vM7pX1cL9bF3gD6sJ0aYeUqr08"
QR_OLD_KEY = "Vb7nM1qW4eR8tY2uI6oP0aS3dF5gH9jKlZ"
LIVE = {
    "NODE_ENV": "production",
    "STRIPE_SECRET_KEY": "sk_live_" + "x",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "JWT_SECRET": JWT_KEY,
    "QR_SECRET": QR_KEY,
    "GATEWAY_PUBLIC_URL": "https://pay.example.com",
}
"""The least a production configuration holds."""


def test_defaults_run_offline_in_test_mode() -> None:
    settings = load_settings({}, None)
    assert settings == Settings()
    assert settings.stripe_test_mode
    assert not settings.is_production


def test_dotenv_syntax(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# Production - Clés LIVE\n"
        "STRIPE_SECRET_KEY=sk_live_...\n"
        'export JWT_SECRET="with spaces # not a comment"\n'
        "QR_SECRET='single'\n"
        "GATEWAY_PORT=8080 # trailing comment\n"
        'GATEWAY_MERCHANT_DISPLAY_NAME="Ma Boutique" # shown on the PaymentSheet\n'
        "\n"
        "not a line\n",
        encoding="utf-8",
    )
    assert read_dotenv(env_file) == {
        "STRIPE_SECRET_KEY": "sk_live_...",
        "JWT_SECRET": "with spaces # not a comment",
        "QR_SECRET": "single",
        "GATEWAY_PORT": "8080",
        "GATEWAY_MERCHANT_DISPLAY_NAME": "Ma Boutique",
    }
    assert read_dotenv(tmp_path / "missing") == {}


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GATEWAY_MERCHANT_DISPLAY_NAME=From file\nGATEWAY_PORT=4000\n", encoding="utf-8")
    settings = load_settings({"GATEWAY_MERCHANT_DISPLAY_NAME": "From env"}, env_file)
    assert settings.gateway_merchant_display_name == "From env"
    assert settings.gateway_port == 4000


def test_types_are_converted_from_strings() -> None:
    settings = load_settings(
        {"GATEWAY_TRPC_ALLOW_BATCHING": "false", "GATEWAY_SHUTDOWN_TIMEOUT": "2.5", "GATEWAY_PORT": "0"}, None
    )
    assert settings.gateway_trpc_allow_batching is False
    assert settings.gateway_shutdown_timeout == 2.5


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
        ({"GATEWAY_TRPC_TRANSFORMER": "yaml"}, "GATEWAY_TRPC_TRANSFORMER"),
        ({"GATEWAY_MERCHANT_COUNTRY": "France"}, "GATEWAY_MERCHANT_COUNTRY"),
        ({"GATEWAY_TRPC_MAX_BATCH_SIZE": "0"}, "GATEWAY_TRPC_MAX_BATCH_SIZE"),
        ({"GATEWAY_LOG_LEVEL": "verbose"}, "GATEWAY_LOG_LEVEL"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(env, None)


def test_production_requires_live_keys() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"NODE_ENV": "production"}, None)
    for variable in (
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "JWT_SECRET",
        "QR_SECRET",
        "GATEWAY_PUBLIC_URL",
    ):
        assert variable in str(raised.value)
    live = load_settings(LIVE, None)
    assert live.is_production
    assert not live.stripe_test_mode
    assert live.public_url == "https://pay.example.com"


@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ("JWT_SECRET", "JWT_SECRET is required when NODE_ENV=production"),
        ("QR_SECRET", "QR_SECRET is required when NODE_ENV=production"),
        ("GATEWAY_PUBLIC_URL", "GATEWAY_PUBLIC_URL must be an https:// address when NODE_ENV=production"),
    ],
)
def test_production_names_each_missing_app_setting_alone(variable: str, reason: str) -> None:
    env = {name: value for name, value in LIVE.items() if name != variable}
    with pytest.raises(ConfigurationError) as raised:
        load_settings(env, None)
    assert str(raised.value).startswith(reason)
    assert ";" not in str(raised.value)  # that one problem, and no other
    # Outside production the same configuration starts.
    assert not load_settings({**env, "NODE_ENV": "development"}, None).is_production


@pytest.mark.parametrize(
    "url", ["http://pay.example.com", "HTTP://pay.example.com", "pay.example.com", "ftp://pay.example.com"]
)
def test_production_refuses_a_public_url_that_is_not_https(url: str) -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_PUBLIC_URL must be an https:// address"):
        load_settings({**LIVE, "GATEWAY_PUBLIC_URL": url}, None)
    assert load_settings({**LIVE, "NODE_ENV": "development", "GATEWAY_PUBLIC_URL": url}, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JWT_SECRET": JWT_KEY[:31]}, "JWT_SECRET: too short: at least 32 characters"),
        ({"QR_SECRET": QR_KEY[:31]}, "QR_SECRET: the key is too short: at least 32 characters"),
        (
            {"QR_SECRET": f"{QR_KEY},{QR_OLD_KEY[:31]}"},
            "QR_SECRET: key 2 of the list is too short: at least 32 characters",
        ),
        (
            {"JWT_SECRET": "short", "QR_SECRET": "also-short"},
            "JWT_SECRET: too short: at least 32 characters;"
            " QR_SECRET: the key is too short: at least 32 characters",
        ),
    ],
)
@pytest.mark.parametrize("node_env", ["development", "production"])
def test_a_short_app_secret_is_refused_anywhere(env: dict[str, str], message: str, node_env: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**LIVE, "NODE_ENV": node_env, **env}, None)
    assert str(raised.value) == message  # the variable and the key's place, never the value


def test_app_secrets_of_32_characters_and_a_rolling_qr_secret_are_accepted() -> None:
    settings = load_settings({"JWT_SECRET": "j" * 32, "QR_SECRET": f" {QR_KEY} , {QR_OLD_KEY} ,"}, None)
    assert settings.jwt_secret == "j" * 32
    assert qr_secrets(settings.qr_secret) == [QR_KEY, QR_OLD_KEY]  # newest first, blanks dropped


def test_inspect_settings_reports_short_app_secrets_per_variable() -> None:
    configured = inspect_settings(
        {**LIVE, "JWT_SECRET": "jwt-k3y", "QR_SECRET": f"{QR_KEY},qr-k3y", "GATEWAY_PORT": "eighty"}, None
    )
    assert configured.problems == {
        "JWT_SECRET": "too short: at least 32 characters",
        "QR_SECRET": "key 2 of the list is too short: at least 32 characters",
        "GATEWAY_PORT": "Expected `int`, got `str`",
    }
    # The refused values keep their defaults; the others are read; production rules are the caller's.
    assert (configured.settings.jwt_secret, configured.settings.qr_secret) == ("", "")
    assert configured.settings.stripe_webhook_secret == "whsec_x"
    assert configured.settings.is_production
    assert configured.values["QR_SECRET"] == f"{QR_KEY},qr-k3y"  # as read, for the caller to check
    assert "k3y" not in " ".join(configured.problems.values())


def test_inspect_settings_accepts_good_app_secrets() -> None:
    configured = inspect_settings(LIVE, None)
    assert configured.problems == {}
    assert configured.settings.qr_secret == QR_KEY


def test_several_webhook_secrets_are_accepted_and_a_malformed_list_refused() -> None:
    rolled = load_settings({"STRIPE_WEBHOOK_SECRET": "whsec_new, whsec_old"}, None)
    assert rolled.stripe_webhook_secret == "whsec_new, whsec_old"
    for bad in ("whsec_a,,whsec_b", "sk_test_pasted_here"):
        with pytest.raises(ConfigurationError) as raised:
            load_settings({"STRIPE_WEBHOOK_SECRET": bad}, None)
        assert "STRIPE_WEBHOOK_SECRET" in str(raised.value)
        assert "pasted" not in str(raised.value)  # never echoes what may be a secret


def test_every_setting_is_documented() -> None:
    assert all(SETTING_DOCS.values())
    assert {
        "STRIPE_SECRET_KEY",
        "NODE_ENV",
        "JWT_SECRET",
        "QR_SECRET",
        "STRIPE_API_VERSION",
    } <= SETTING_DOCS.keys()
