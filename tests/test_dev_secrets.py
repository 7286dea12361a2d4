"""The offline demo's generated JWT_SECRET / QR_SECRET: private, shared by every process, never in production."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

from gateway.dev_secrets import with_development_secrets
from gateway.settings import Settings


def test_secrets_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "dev-secrets.json"
    first = with_development_secrets(Settings(), path)
    assert len(first.jwt_secret) >= 32
    assert len(first.qr_secret) >= 32
    assert first.jwt_secret != first.qr_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = with_development_secrets(Settings(), path)
    assert (again.jwt_secret, again.qr_secret) == (first.jwt_secret, first.qr_secret)
    assert [p.name for p in path.parent.iterdir()] == ["dev-secrets.json"]  # no temporary file left


def test_configured_secrets_win_and_production_never_generates(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    configured = Settings(jwt_secret="j" * 16 + "k" * 16, qr_secret="q" * 16 + "r" * 16)
    assert with_development_secrets(configured, path) == configured
    production = Settings(node_env="production")
    assert with_development_secrets(production, path) == production
    assert not path.exists()


def test_an_unusable_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    path.write_text(json.dumps({"jwt_secret": "", "qr_secret": "short"}))
    settings = with_development_secrets(Settings(), path)
    assert len(settings.jwt_secret) >= 32
    assert json.loads(path.read_text())["jwt_secret"] == settings.jwt_secret


def _generate(path: str, results: multiprocessing.Queue[str]) -> None:
    results.put(with_development_secrets(Settings(), Path(path)).jwt_secret)


def test_processes_starting_together_share_one_pair(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()
    workers = [context.Process(target=_generate, args=(str(path), results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    seen = {results.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(timeout=60)
    assert seen == {json.loads(path.read_text())["jwt_secret"]}
