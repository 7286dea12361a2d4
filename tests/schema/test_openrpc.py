"""openrpc.json: checked in, generated from the registry, a valid OpenRPC 1.3.2 document with draft-07 schemas.

The meta-schema and draft-07 checks run tests/conformance/node/openrpc/validate.mjs (ajv with @open-rpc/meta-schema),
installed by `bash scripts/setup`.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.auth.access import PUBLIC
from gateway.cli import main
from gateway.errors import ErrorCode
from gateway.ops.schema import DEFAULT_OUTPUT, render_openrpc
from gateway.registry import Registry, Router
from gateway.schema.openrpc import (
    DEFAULT_SERVER_URL,
    REF_PREFIX,
    SchemaConversionError,
    openrpc_document,
    to_draft07,
)
from procedures import build_router

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "openrpc.json"
VALIDATOR_DIR = ROOT / "tests" / "conformance" / "node" / "openrpc"
NODE_TIMEOUT_SECONDS = 60
REGENERATE = "run `.venv/bin/gateway schema openrpc` and commit openrpc.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openrpc_document(Registry(build_router()), DEFAULT_SERVER_URL)


def test_checked_in_document_is_what_the_registry_generates_now() -> None:
    assert DEFAULT_OUTPUT == CHECKED_IN
    assert CHECKED_IN.exists(), f"openrpc.json is missing: {REGENERATE}"
    assert CHECKED_IN.read_text(encoding="utf-8") == render_openrpc(DEFAULT_SERVER_URL), (
        f"openrpc.json differs from what the procedure registry generates now: {REGENERATE}"
    )


def test_check_command_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "openrpc.json"
    args = ["schema", "openrpc", "--output", str(target), "--server-url", DEFAULT_SERVER_URL]
    assert main([*args, "--check"]) == 1  # missing
    assert main(args) == 0
    assert target.read_text(encoding="utf-8") == render_openrpc(DEFAULT_SERVER_URL)
    assert main([*args, "--check"]) == 0
    stale = json.loads(target.read_text(encoding="utf-8"))
    stale["methods"][0]["description"] = "edited by hand"
    target.write_text(json.dumps(stale, indent=2) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "differs from what the registry generates now" in err
    assert "edited by hand" in err
    assert "gateway schema openrpc" in err


def test_server_url_option(tmp_path: Path) -> None:
    target = tmp_path / "openrpc.json"
    url = "https://pay.example.com/"
    assert main(["schema", "openrpc", "--output", str(target), "--server-url", url]) == 0
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written["servers"] == [{"name": "gateway", "url": "https://pay.example.com/rpc"}]


def test_output_is_deterministic() -> None:
    first = render_openrpc(DEFAULT_SERVER_URL)
    assert first == render_openrpc(DEFAULT_SERVER_URL)
    assert first.endswith("}\n")
    assert '\n  "methods": [\n' in first  # 2-space indentation


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith(REF_PREFIX), ref
    schemas = document["components"]["schemas"]
    name = ref.removeprefix(REF_PREFIX)
    assert name in schemas, f"{ref} does not resolve"
    return schemas[name]


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return own + [ref for key, value in schema.items() if key != "enum" for ref in _refs(value)]
    if isinstance(schema, list):
        return [ref for item in schema for ref in _refs(item)]
    return []


def test_every_procedure_is_a_method_with_resolving_schemas(document: dict[str, Any]) -> None:
    registry = Registry(build_router())
    methods = {method["name"]: method for method in document["methods"]}
    assert list(methods) == [procedure.path for procedure in registry]
    assert document["openrpc"] == "1.3.2"
    assert document["servers"] == [{"name": "gateway", "url": "http://127.0.0.1:3000/rpc"}]
    for procedure in registry:
        method = methods[procedure.path]
        assert method["x-trpc-type"] == procedure.kind
        assert method["paramStructure"] == "by-name"
        assert method["description"] == " ".join(procedure.description.split())  # one paragraph each
        assert method["description"].startswith(method["summary"])
        result = method["result"]["schema"]
        output = procedure.output_type
        assert result == {"$ref": f"{REF_PREFIX}{output.__name__}"}
        _resolve(document, result["$ref"])
        if procedure.input is None:
            assert method["params"] == []
            continue
        # By name: one param per field of the input struct, with its JSON name, schema and requiredness.
        struct_schema = _resolve(document, f"{REF_PREFIX}{procedure.input.type.__name__}")
        assert [param["name"] for param in method["params"]] == list(struct_schema["properties"])
        assert {param["name"] for param in method["params"] if param["required"]} == set(
            struct_schema["required"]
        )
        for param in method["params"]:
            assert param["schema"] == struct_schema["properties"][param["name"]]
            for ref in _refs(param["schema"]):
                _resolve(document, ref)
    for schema in document["components"]["schemas"].values():
        for ref in _refs(schema):
            _resolve(document, ref)


def test_named_params_are_the_tRPC_input(document: dict[str, Any]) -> None:
    """A `params` object built from the documented names decodes as the procedure's input."""
    method = next(m for m in document["methods"] if m["name"] == "stripe.createPaymentIntent")
    assert [(p["name"], p["required"]) for p in method["params"]] == [
        ("orderId", True),
        ("amount", True),
        ("currency", True),
        ("description", False),
        ("metadata", False),
        ("customer", False),
        ("clientSecret", False),
    ]
    procedure = Registry(build_router()).get("stripe.createPaymentIntent")
    assert procedure is not None
    assert procedure.input is not None
    params = {"orderId": "o-1", "amount": 1000, "currency": "eur", "customer": {"email": "a@b.co"}}
    decoded = procedure.input.decoder.decode(msgspec.json.encode(params))
    assert decoded.order_id == "o-1"
    assert decoded.customer.email == "a@b.co"
    customer = method["params"][5]["schema"]
    assert {"$ref": f"{REF_PREFIX}CustomerInput"} in customer["anyOf"]


def test_errors_carry_tRPC_codes(document: dict[str, Any]) -> None:
    for method in document["methods"]:
        errors = {error["message"]: error for error in method["errors"]}
        assert "PARSE_ERROR" not in errors
        assert errors["BAD_REQUEST"]["code"] == -32600
        assert errors["INTERNAL_SERVER_ERROR"]["code"] == -32603
        assert errors["CONFLICT"] == {
            "code": -32009,
            "message": "CONFLICT",
            "data": {"code": "CONFLICT", "httpStatus": 409},
        }
        assert len(errors) == len(ErrorCode) - 1


def test_non_struct_input_is_one_param_named_input() -> None:
    router = Router()

    @router.query(access=PUBLIC)
    async def echo(ctx: object, input: list[int] | None) -> list[int]:
        """Echo."""
        return input or []

    document = openrpc_document(Registry(router))
    (method,) = document["methods"]
    assert method["params"] == [
        {
            "name": "input",
            "required": False,
            "schema": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
        }
    ]


def test_2020_12_keywords_become_draft07_or_fail() -> None:
    tuple_schema = msgspec.json.schema(tuple[int, str])
    assert "prefixItems" in tuple_schema  # what msgspec emits
    converted = to_draft07(tuple_schema)
    assert converted["items"] == [{"type": "integer"}, {"type": "string"}]
    assert "prefixItems" not in converted
    assert converted["additionalItems"] is False
    with pytest.raises(SchemaConversionError, match="unevaluatedProperties"):
        to_draft07({"type": "object", "unevaluatedProperties": False})
    with pytest.raises(SchemaConversionError, match=r"\$defs"):
        to_draft07({"$defs": {}})


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not (VALIDATOR_DIR / "node_modules").is_dir():
        pytest.fail(f"node or {VALIDATOR_DIR}/node_modules missing: run `bash scripts/setup`", pytrace=False)
    return subprocess.run(
        [node, "validate.mjs", str(path)],
        cwd=VALIDATOR_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.node
def test_document_validates_against_the_openrpc_meta_schema_and_draft07() -> None:
    done = _validate(CHECKED_IN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid OpenRPC 1.3.2" in done.stdout


def _broken(document: dict[str, Any], how: str) -> dict[str, Any]:
    broken = copy.deepcopy(document)
    if how == "method without name":
        del broken["methods"][0]["name"]
    elif how == "unknown openrpc version":
        broken["openrpc"] = "9.9.9"
    elif how == "2020-12 prefixItems":
        broken["components"]["schemas"]["Pair"] = {"type": "array", "prefixItems": [{"type": "integer"}]}
    elif how == "2020-12 $defs":
        broken["components"]["schemas"]["Defs"] = {"$defs": {"A": {"type": "string"}}}
    elif how == "dangling $ref":
        broken["methods"][0]["result"]["schema"] = {"$ref": f"{REF_PREFIX}Missing"}
    return broken


@pytest.mark.node
@pytest.mark.parametrize(
    "how",
    [
        "method without name",
        "unknown openrpc version",
        "2020-12 prefixItems",
        "2020-12 $defs",
        "dangling $ref",
    ],
)
def test_validator_rejects_a_broken_document(document: dict[str, Any], tmp_path: Path, how: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(document, how)), encoding="utf-8")
    done = _validate(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invalid" in done.stderr
