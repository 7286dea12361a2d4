"""clients/typescript/app-router.d.ts: checked in, generated from the registry, and usable by @trpc/client v11.

The tsc cases run the real TypeScript compiler with the real @trpc/client and @trpc/server 11.25.2 from
tests/conformance/node/types (installed by `bash scripts/setup`), each case file on its own, with a config that
extends the package's tsconfig.json (strict, noEmit, moduleResolution bundler, no skipLibCheck: the declaration
itself is checked too).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.auth.access import PUBLIC
from gateway.cli import main
from gateway.ops.schema import DEFAULT_TYPESCRIPT_OUTPUT, render_typescript
from gateway.registry import Registry, Router
from gateway.schema.typescript import typescript_declaration

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "clients" / "typescript" / "app-router.d.ts"
TYPES_DIR = ROOT / "tests" / "conformance" / "node" / "types"
TSC = TYPES_DIR / "node_modules" / "typescript" / "bin" / "tsc"
TSC_TIMEOUT_SECONDS = 120
REGENERATE = "run `.venv/bin/gateway schema typescript` and commit clients/typescript/app-router.d.ts"


def test_checked_in_declaration_is_what_the_registry_generates_now() -> None:
    assert DEFAULT_TYPESCRIPT_OUTPUT == CHECKED_IN
    assert CHECKED_IN.exists(), f"app-router.d.ts is missing: {REGENERATE}"
    assert CHECKED_IN.read_text(encoding="utf-8") == render_typescript(), (
        f"clients/typescript/app-router.d.ts differs from what the procedure registry generates now: {REGENERATE}"
    )


def test_check_command_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sub" / "app-router.d.ts"
    args = ["schema", "typescript", "--output", str(target)]
    assert main([*args, "--check"]) == 1  # missing
    assert main(args) == 0
    assert target.read_text(encoding="utf-8") == render_typescript()
    assert main([*args, "--check"]) == 0
    target.write_text(render_typescript().replace("amount: number;", "amount: string;", 1), encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "run `gateway schema typescript`" in err
    assert "-  amount: string;" in err
    assert "+  amount: number;" in err


def test_declaration_shape() -> None:
    text = render_typescript()
    assert text.count("\nimport ") == 1  # types only
    assert "\nimport type {\n" in text
    assert '} from "@trpc/server";' in text
    assert "export type AppRouter = TRPCBuiltRouter<AppRouterRoot, AppRouterRecord>;" in text
    assert "transformer: false;" in text
    assert (
        "getConfig: TRPCQueryProcedure<{ input: void; output: StripeConfig; meta: object; "
        "errorShape: TRPCDefaultErrorShape }>;" in text
    )
    assert "createPaymentIntent: TRPCMutationProcedure<{ input: CreatePaymentIntentInput;" in text
    assert "  metadata?: Record<string, string> | null;\n" in text
    assert '  reason?: "duplicate" | "fraudulent" | "requested_by_customer" | null;\n' in text
    assert "  paymentIntentId: string | null;\n" in text  # required but nullable
    assert "  orderId: string;\n" in text
    assert "order_id" not in text


class _Tagged(msgspec.Struct, tag=True):
    n: int


class _Other(msgspec.Struct, tag=True):
    s: str


class _Row(msgspec.Struct, array_like=True):
    a: int
    b: str


def test_translation_of_other_types() -> None:
    router = Router()
    nested = Router()

    @nested.query(access=PUBLIC)
    async def echo(ctx: object, input: list[int] | None) -> tuple[int, str]:
        raise NotImplementedError

    @nested.mutation(access=PUBLIC, name="odd-name")
    async def odd(ctx: object, input: _Tagged | _Other) -> dict[str, float]:
        raise NotImplementedError

    @router.query(access=PUBLIC)
    async def anything(ctx: object, input: Any) -> _Row:
        raise NotImplementedError

    router.include("deep", nested)
    text = typescript_declaration(Registry(router))
    assert "echo: TRPCQueryProcedure<{ input: number[] | null | void; output: [number, string];" in text
    assert (
        '"odd-name": TRPCMutationProcedure<{ input: _Tagged | _Other; output: Record<string, number>;' in text
    )
    assert 'type: "_Tagged";' in text
    assert "anything: TRPCQueryProcedure<{ input: unknown; output: _Row;" in text
    assert "export type _Row = [number, string];" in text
    assert "  deep: {\n" in text


def _tsc(case: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not TSC.exists():
        pytest.fail(f"{TSC} is missing: run `bash scripts/setup` (npm ci in {TYPES_DIR})")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run `bash scripts/setup`")
    config = tmp_path / f"tsconfig.{case}.json"
    config.write_text(
        json.dumps({"extends": str(TYPES_DIR / "tsconfig.json"), "files": [str(TYPES_DIR / case)]}),
        encoding="utf-8",
    )
    return subprocess.run(
        [node, str(TSC), "-p", str(config), "--pretty", "false"],
        cwd=TYPES_DIR,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.node
def test_app_like_code_compiles(tmp_path: Path) -> None:
    result = _tsc("good.ts", tmp_path)
    assert result.returncode == 0, f"good.ts must compile:\n{result.stdout}{result.stderr}"


@pytest.mark.node
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "bad-input.ts",
            ["bad-input.ts(7,", "error TS2322: Type 'string' is not assignable to type 'number'."],
        ),
        (
            "query-as-mutation.ts",
            ["query-as-mutation.ts(7,", "error TS2339: Property 'mutate' does not exist"],
        ),
        (
            "mutation-as-query.ts",
            ["mutation-as-query.ts(7,", "error TS2339: Property 'query' does not exist"],
        ),
        (
            "output-misuse.ts",
            [
                "output-misuse.ts(9,",
                "error TS2322: Type 'number' is not assignable to type 'string'.",
                "output-misuse.ts(10,",
                "error TS2367:",
            ],
        ),
    ],
)
def test_wrong_calls_fail_to_compile(case: str, expected: list[str], tmp_path: Path) -> None:
    result = _tsc(case, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, (
        f"{case} must fail to compile (tsc exit 2), got {result.returncode}:\n{output}"
    )
    for text in expected:
        assert text in output, f"{text!r} not in tsc's output for {case}:\n{output}"
    # only the case's own errors, none in the declaration or in @trpc's types
    assert "node_modules" not in output, output
    assert "app-router.d.ts" not in output, output
