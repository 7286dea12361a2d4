"""The OpenRPC 1.3.2 document of the gateway, generated from the procedure registry (never written by hand).

`openrpc_document(registry, server_url)` returns the document as plain JSON data; `gateway schema openrpc` writes it
to `openrpc.json` at the repository root, and a test fails when the checked-in file differs from what the registry
generates now.

What the document promises, and the JSON-RPC 2.0 endpoint (`POST <server_url>/rpc`) keeps:

Methods
    One method per procedure, named by its tRPC path (`stripe.createPaymentIntent`), in registration order.
    `description` is the procedure's docstring (hard-wrapped lines joined), `summary` its first sentence; `x-trpc-type` is `query` or
    `mutation` (an extension: JSON-RPC itself has no such distinction, both are called the same way).

Params: `paramStructure: "by-name"`, always; `params` must be a JSON object (or be omitted; see below).
    * Input that is a plain msgspec Struct (an object on the wire, as every `stripe.*` input is): one named param
      per field of the struct, with the struct's camelCase JSON name, its JSON Schema, and `required` as the struct
      says. The `params` object of a call IS the procedure's tRPC input: the endpoint decodes `params` with the
      procedure's input type, exactly as `/trpc` decodes `input` (unknown members are ignored, as msgspec does).
    * Any other input type (a scalar, a list, an optional struct, a tagged or array-like struct, `object`): one
      param named `input`, required unless the type accepts null; the call's `params` is `{"input": <value>}`
      and the tRPC input is `params["input"]` (absent: tRPC's `undefined`).
    * No input (`stripe.getConfig`): `params: []`; a call omits `params` or sends `{}`.
    By-position params (a JSON array) are not part of this contract.

Result
    `result` is named `result`, with the output type's JSON Schema: the same JSON the tRPC `result.data` carries
    without a transformer (camelCase fields, money as integers, datetimes as ISO 8601 strings).

Errors: the full table, on every method (per-method precision is impractical: which codes a procedure answers with
depends on the payment service, Stripe's errors and the store, which the registry does not declare).
    Every method lists every tRPC error code (gateway.errors.ErrorCode) except PARSE_ERROR, which concerns a request
    body that is not JSON, before any method is known. Each entry is `{"code": <JSON-RPC integer>, "message": <the
    tRPC code name>, "data": {"code": <tRPC code name>, "httpStatus": <HTTP status>}}`. Several tRPC codes share a
    JSON-RPC integer (-32603: INTERNAL_SERVER_ERROR, NOT_IMPLEMENTED, BAD_GATEWAY, SERVICE_UNAVAILABLE,
    GATEWAY_TIMEOUT), so a client tells them apart by `error.data.code`, as tRPC clients do. Input validation
    failures are BAD_REQUEST (-32600, tRPC's integer; not JSON-RPC's -32602). The actual `message` of an error is
    the human-readable one the procedure gives; `data` carries at least `code` and `httpStatus`.

Schemas
    Built with `msgspec.json.schema_components` (the same types that decode and encode the calls), with the shared
    types under `components.schemas` and referenced as `{"$ref": "#/components/schemas/<Name>"}`, then made
    JSON Schema draft-07 compatible (OpenRPC 1.3.2's content descriptors take draft-07): `prefixItems` becomes
    `items` + `additionalItems`, `dependentRequired` becomes `dependencies`, and any other keyword draft-07 does not
    know is an error at generation time, not a silently wrong document.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from gateway import codec
from gateway.errors import ErrorCode
from gateway.registry import Procedure

__all__ = [
    "DEFAULT_SERVER_URL",
    "OPENRPC_VERSION",
    "PACKAGE_NAME",
    "RPC_PATH",
    "SchemaConversionError",
    "is_params_struct",
    "method_errors",
    "openrpc_document",
    "to_draft07",
]

OPENRPC_VERSION = "1.3.2"
PACKAGE_NAME = "trpc-stripe-gateway"
DEFAULT_SERVER_URL = "http://127.0.0.1:3000"
"""The settings' default public URL (GATEWAY_HOST:GATEWAY_PORT): what the checked-in openrpc.json is made with."""
RPC_PATH = "/rpc"
REF_PREFIX = "#/components/schemas/"
TITLE = "tRPC Stripe payments gateway"
DESCRIPTION = (
    "The gateway's `stripe.*` procedures over JSON-RPC 2.0 (POST /rpc), the same procedures, validation and errors "
    "as the tRPC endpoint (/trpc) the app uses. Generated from the procedure registry by `gateway schema openrpc`: "
    "do not edit by hand. Params are by name: the `params` object is the procedure's input. Errors carry the "
    "tRPC code in `error.data.code`. `x-access` says who may call a method: `public`; `user` (an "
    "`Authorization: Bearer <JWT>` header, HS256 with the app's JWT_SECRET; or a guest, where guest checkout is "
    "on); a role (`staff`, `admin`) the token must carry."
)

# JSON Schema draft-07 keywords (validation, applicators, annotations, core).
_DRAFT07_KEYWORDS = frozenset(
    {
        "$id",
        "$schema",
        "$ref",
        "$comment",
        "title",
        "description",
        "default",
        "readOnly",
        "writeOnly",
        "examples",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "additionalItems",
        "items",
        "maxItems",
        "minItems",
        "uniqueItems",
        "contains",
        "maxProperties",
        "minProperties",
        "required",
        "additionalProperties",
        "definitions",
        "properties",
        "patternProperties",
        "dependencies",
        "propertyNames",
        "const",
        "enum",
        "type",
        "format",
        "contentMediaType",
        "contentEncoding",
        "if",
        "then",
        "else",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
_VALUE_KEYWORDS = frozenset({"default", "examples", "const", "enum"})
"""Their values are JSON data, not schemas: never walked."""
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "definitions", "dependencies"})
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})
_SCHEMA_KEYWORDS = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
    }
)


class SchemaConversionError(ValueError):
    """msgspec produced a JSON Schema construct that has no draft-07 equivalent."""


def to_draft07(schema: Any, where: str = "#") -> Any:
    """A copy of a msgspec (2020-12 style) JSON Schema that is valid draft-07; SchemaConversionError if impossible."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise SchemaConversionError(f"{where}: not a schema: {schema!r}")
    source = dict(schema)
    if "prefixItems" in source:
        # 2020-12 tuples: prefixItems + items (the rest) is draft-07's items (a list) + additionalItems.
        prefix = source.pop("prefixItems")
        rest = source.pop("items", None)
        source["items"] = prefix
        if rest is not None:
            source["additionalItems"] = rest
    if "dependentRequired" in source or "dependentSchemas" in source:
        dependencies: dict[str, Any] = dict(source.pop("dependentRequired", {}))
        dependencies.update(source.pop("dependentSchemas", {}))
        source["dependencies"] = dependencies
    out: dict[str, Any] = {}
    for key, value in source.items():
        here = f"{where}/{key}"
        if key not in _DRAFT07_KEYWORDS:
            raise SchemaConversionError(f"{here}: {key!r} is not a JSON Schema draft-07 keyword")
        if key in _VALUE_KEYWORDS:
            out[key] = value
        elif key in _SCHEMA_MAP_KEYWORDS:
            out[key] = {
                name: sub if isinstance(sub, list) else to_draft07(sub, f"{here}/{name}")
                for name, sub in value.items()
            }
        elif key in _SCHEMA_LIST_KEYWORDS or (key == "items" and isinstance(value, list)):
            out[key] = [to_draft07(sub, f"{here}/{i}") for i, sub in enumerate(value)]
        elif key in _SCHEMA_KEYWORDS:
            out[key] = to_draft07(value, here)
        elif key == "$ref":
            if not isinstance(value, str) or not value.startswith(REF_PREFIX):
                raise SchemaConversionError(f"{here}: unexpected reference {value!r}")
            out[key] = value
        else:
            out[key] = value
    return out


def is_params_struct(type_: Any) -> bool:
    """A Struct whose JSON is a plain object: its fields can be the method's named params."""
    bare = codec.strip_annotated(type_)
    if not (isinstance(bare, type) and issubclass(bare, msgspec.Struct)):
        return False
    config = bare.__struct_config__
    return not config.array_like and config.tag is None


def _unwrap(docstring: str) -> str:
    """A docstring as text: its hard-wrapped lines joined, paragraphs (blank-line separated) kept."""
    paragraphs = (" ".join(paragraph.split()) for paragraph in docstring.split("\n\n"))
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def _summary(description: str) -> str:
    """The first sentence of a docstring, on one line."""
    text = " ".join(description.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def method_errors() -> list[dict[str, Any]]:
    """The error table every method lists (see the module docstring)."""
    return [
        {
            "code": code.jsonrpc_code,
            "message": code.name,
            "data": {"code": code.name, "httpStatus": code.http_status},
        }
        for code in ErrorCode
        if code is not ErrorCode.PARSE_ERROR
    ]


def _params(
    procedure: Procedure, schema: dict[str, Any], components: Mapping[str, Any]
) -> list[dict[str, Any]]:
    if procedure.input is None:
        return []
    ref = schema.get("$ref")
    if is_params_struct(procedure.input.type) and isinstance(ref, str) and len(schema) == 1:
        struct_schema = components[ref.removeprefix(REF_PREFIX)]
        required = set(struct_schema.get("required", ()))
        params = []
        for name, field_schema in struct_schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "required": name in required, "schema": field_schema}
            if isinstance(field_schema.get("description"), str):
                param["description"] = field_schema["description"]
            params.append(param)
        return params
    return [{"name": "input", "required": not procedure.input.accepts_none, "schema": schema}]


def _method(
    procedure: Procedure,
    input_schema: dict[str, Any] | None,
    output_schema: dict[str, Any],
    components: Mapping[str, Any],
) -> dict[str, Any]:
    method: dict[str, Any] = {"name": procedure.path}
    if procedure.description:
        method["summary"] = _summary(procedure.description)
        method["description"] = _unwrap(procedure.description)
    method["paramStructure"] = "by-name"
    method["params"] = _params(procedure, input_schema, components) if input_schema is not None else []
    method["result"] = {"name": "result", "schema": output_schema}
    method["errors"] = method_errors()
    method["x-trpc-type"] = procedure.kind
    method["x-access"] = str(procedure.access)
    return method


def _package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "0.0.0"


def _output_type(procedure: Procedure) -> Any:
    # A procedure without a return annotation answers with any JSON value.
    return Any if procedure.output_type is None else procedure.output_type


def openrpc_document(registry: Iterable[Procedure], server_url: str = DEFAULT_SERVER_URL) -> dict[str, Any]:
    """The OpenRPC 1.3.2 document of every procedure in the registry, for a gateway at `server_url`."""
    procedures = list(registry)
    types: list[Any] = []
    for procedure in procedures:
        types.append(procedure.input.type if procedure.input is not None else None)
        types.append(_output_type(procedure))
    # None stands for "no input" and is left out of the schema generation.
    wanted = [type_ for type_ in types if type_ is not None]
    generated, raw_components = msgspec.json.schema_components(wanted, ref_template=REF_PREFIX + "{name}")
    schemas = iter(generated)
    components = {
        name: to_draft07(schema, f"{REF_PREFIX}{name}") for name, schema in sorted(raw_components.items())
    }
    methods = []
    for procedure, input_type in zip(procedures, types[::2], strict=True):
        input_schema = (
            to_draft07(next(schemas), f"{procedure.path} input") if input_type is not None else None
        )
        output_schema = to_draft07(next(schemas), f"{procedure.path} result")
        methods.append(_method(procedure, input_schema, output_schema, components))
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": TITLE, "version": _package_version(), "description": DESCRIPTION},
        "servers": [{"name": "gateway", "url": server_url.rstrip("/") + RPC_PATH}],
        "methods": methods,
        "components": {"schemas": components},
    }
