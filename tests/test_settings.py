"""Configuration: `.env` parsing, precedence, validation messages that name the variable, production rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import SETTING_DOCS, ConfigurationError, Settings, load_settings, read_dotenv


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
    assert "STRIPE_SECRET_KEY" in str(raised.value)
    assert "STRIPE_PUBLISHABLE_KEY" in str(raised.value)
    assert "STRIPE_WEBHOOK_SECRET" in str(raised.value)
    live = load_settings(
        {
            "NODE_ENV": "production",
            "STRIPE_SECRET_KEY": "sk_live_x",
            "STRIPE_PUBLISHABLE_KEY": "pk_live_x",
            "STRIPE_WEBHOOK_SECRET": "whsec_x",
        },
        None,
    )
    assert live.is_production
    assert not live.stripe_test_mode


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
