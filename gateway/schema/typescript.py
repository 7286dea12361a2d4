"""The TypeScript declaration of the router (`AppRouter`), generated from the procedure registry (never by hand).

`typescript_declaration(registry)` returns the text of a `.d.ts` module; `gateway schema typescript` writes it to
`clients/typescript/app-router.d.ts`, and a test fails when the checked-in file differs from what the registry
generates now. The React Native app imports it as a type only:

    import type { AppRouter } from "./app-router";
    const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url })] });

`AppRouter` is `TRPCBuiltRouter<root, record>` from @trpc/server v11 (types only; nothing is imported at run time):
the same type `t.router({...})` gives a TypeScript server, so @trpc/client accepts it as `AnyRouter` and checks
each call: the procedure's path, `.query` vs `.mutate` (`TRPCQueryProcedure` / `TRPCMutationProcedure`), the input
and the output. The root types are what the gateway speaks: no transformer (plain JSON), tRPC's default error shape.

Source of truth: the types are translated from the JSON Schema that `msgspec.json.schema_components` makes of the
procedures' input and output types, the same call that produces `openrpc.json`. So both exports agree by
construction on the wire names (camelCase), which fields are required, nullability, literal unions and the
component names, and they describe exactly what msgspec decodes and encodes. Translation:

    object with properties        `export interface Name { field: T; optional?: T }` (absent from `required`: `?:`)
    object with additionalProperties only   `Record<string, T>`
    string / integer / number / boolean / null   `string` / `number` / `number` / `boolean` / `null`
    anyOf / oneOf, enum, const     unions and literal types (`"eur" | "usd"`, `T | null`)
    array, prefixItems             `T[]`, tuples
    `{}` (Any, object)             `unknown`
    no input                       `void` (so `.query()` takes no argument); an input that accepts None also `| void`

Constraints TypeScript cannot express (lengths, patterns, ranges) are kept in the JSDoc of the field, with its
description, and checked by the gateway at run time. Output fields that have a default are `?:` as the JSON Schema
says (the gateway does write them; `?:` is the weaker, always-true promise).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from gateway.registry import Procedure

__all__ = ["TRPC_SERVER_MODULE", "TypeScriptConversionError", "typescript_declaration"]

TRPC_SERVER_MODULE = "@trpc/server"
REF_PREFIX = "#/components/schemas/"
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_CONSTRAINTS = (
    ("minLength", "minLength"),
    ("maxLength", "maxLength"),
    ("pattern", "pattern"),
    ("minimum", "minimum"),
    ("exclusiveMinimum", "exclusiveMinimum"),
    ("maximum", "maximum"),
    ("exclusiveMaximum", "exclusiveMaximum"),
    ("multipleOf", "multipleOf"),
    ("minItems", "minItems"),
    ("maxItems", "maxItems"),
    ("minProperties", "minProperties"),
    ("maxProperties", "maxProperties"),
    ("format", "format"),
)
_HEADER = """\
// The gateway's tRPC router as a TypeScript type, for `createTRPCClient<AppRouter>` (@trpc/client v11).
// Generated from the procedure registry by `gateway schema typescript`: do not edit by hand.
// Types only: importing this file adds nothing to the app's bundle (use `import type`).
"""


class TypeScriptConversionError(ValueError):
    """The JSON Schema of a procedure type has a construct this generator does not translate."""


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _literal(value: Any, where: str) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeScriptConversionError(f"{where}: literal {value!r} is not a JSON scalar")


def _union(members: Iterable[str]) -> str:
    unique = list(dict.fromkeys(members))
    if "unknown" in unique:
        return "unknown"
    return " | ".join(unique) if unique else "never"


def _doc_lines(schema: Mapping[str, Any]) -> list[str]:
    """The description of a schema, then the constraints TypeScript cannot express (also of keys and values)."""
    lines: list[str] = []
    description = schema.get("description")
    if isinstance(description, str):
        lines.extend(
            " ".join(paragraph.split()) for paragraph in description.split("\n\n") if paragraph.strip()
        )
    for keyword, tag in _CONSTRAINTS:
        if keyword in schema:
            lines.append(f"@{tag} {schema[keyword]}")
    for keyword, label in (("propertyNames", "keys"), ("additionalProperties", "values"), ("items", "items")):
        sub = schema.get(keyword)
        if isinstance(sub, dict) and "$ref" not in sub:
            lines.extend(f"{label}: {line}" for line in _doc_lines(sub) if line.startswith("@"))
    return lines


def _comment(schema: Mapping[str, Any], indent: str) -> list[str]:
    """A JSDoc block of `_doc_lines`, or nothing."""
    lines = _doc_lines(schema)
    if not lines:
        return []
    body = [f"{indent} * {line}".replace("*/", "*\\/") for line in lines]
    return [f"{indent}/**", *body, f"{indent} */"]


class _Translator:
    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components

    def type(self, schema: Any, where: str, indent: str = "") -> str:
        if schema is True:
            return "unknown"
        if schema is False:
            return "never"
        if not isinstance(schema, dict):
            raise TypeScriptConversionError(f"{where}: not a schema: {schema!r}")
        if "$ref" in schema:
            ref = schema["$ref"]
            name = ref.removeprefix(REF_PREFIX) if isinstance(ref, str) else ""
            if name not in self.components or not _IDENTIFIER.match(name):
                raise TypeScriptConversionError(f"{where}: unexpected reference {ref!r}")
            return name
        if "const" in schema:
            return _literal(schema["const"], where)
        if "enum" in schema:
            return _union(_literal(value, where) for value in schema["enum"])
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return _union(
                    self.type(sub, f"{where}/{keyword}/{i}", indent) for i, sub in enumerate(schema[keyword])
                )
        if "allOf" in schema:
            return " & ".join(
                self._wrap(self.type(sub, f"{where}/allOf/{i}", indent))
                for i, sub in enumerate(schema["allOf"])
            )
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union(self.type({**schema, "type": one}, where, indent) for one in kind)
        if kind is None:
            return "unknown"
        if kind == "string":
            return "string"
        if kind in ("integer", "number"):
            return "number"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array":
            return self._array(schema, where, indent)
        if kind == "object":
            return self._object(schema, where, indent)
        raise TypeScriptConversionError(f"{where}: unknown JSON Schema type {kind!r}")

    @staticmethod
    def _wrap(type_: str) -> str:
        """Parenthesised when it is a union or intersection, so it can be an operand or an array's item."""
        depth = 0
        for char in type_:
            if char in "{[(<":
                depth += 1
            elif char in "}])>":
                depth -= 1
            elif char in "|&" and depth == 0:
                return f"({type_})"
        return type_

    def _array(self, schema: Mapping[str, Any], where: str, indent: str) -> str:
        if "prefixItems" in schema:
            members = [
                self.type(sub, f"{where}/prefixItems/{i}", indent)
                for i, sub in enumerate(schema["prefixItems"])
            ]
            rest = schema.get("items", False)
            if rest is not False:
                members.append(f"...{self._wrap(self.type(rest, f'{where}/items', indent))}[]")
            return f"[{', '.join(members)}]"
        return f"{self._wrap(self.type(schema.get('items', True), f'{where}/items', indent))}[]"

    def _object(self, schema: Mapping[str, Any], where: str, indent: str) -> str:
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if not properties:
            if extra is False:
                return "Record<string, never>"
            return f"Record<string, {self.type(extra, f'{where}/additionalProperties', indent)}>"
        lines = self.members(schema, where, indent + "  ")
        if extra is not False and extra is not True:
            value = self.type(extra, f"{where}/additionalProperties", indent + "  ")
            lines.append(f"{indent}  [key: string]: {value};")
        return "{\n" + "\n".join(lines) + f"\n{indent}}}"

    def members(self, schema: Mapping[str, Any], where: str, indent: str) -> list[str]:
        required = set(schema.get("required", ()))
        lines: list[str] = []
        for name, sub in schema.get("properties", {}).items():
            lines.extend(_comment(sub, indent) if isinstance(sub, dict) else [])
            optional = "" if name in required else "?"
            lines.append(f"{indent}{_key(name)}{optional}: {self.type(sub, f'{where}/{name}', indent)};")
        return lines

    def component(self, name: str, schema: Any) -> list[str]:
        where = f"{REF_PREFIX}{name}"
        if not _IDENTIFIER.match(name):
            raise TypeScriptConversionError(f"{where}: {name!r} is not a TypeScript identifier")
        doc = _comment({"description": schema.get("description")}, "") if isinstance(schema, dict) else []
        if (
            isinstance(schema, dict)
            and schema.get("type") == "object"
            and schema.get("properties")
            and schema.get("additionalProperties", True) in (True, False)
        ):
            return [*doc, f"export interface {name} {{", *self.members(schema, where, "  "), "}"]
        return [*doc, f"export type {name} = {self.type(schema, where)};"]


def _output_type(procedure: Procedure) -> Any:
    return Any if procedure.output_type is None else procedure.output_type


def _procedure_line(procedure: Procedure, name: str, input_ts: str, output_ts: str, indent: str) -> list[str]:
    helper = "TRPCQueryProcedure" if procedure.kind == "query" else "TRPCMutationProcedure"
    doc = _comment({"description": procedure.description}, indent) if procedure.description else []
    return [
        *doc,
        f"{indent}{_key(name)}: {helper}<{{ input: {input_ts}; output: {output_ts}; meta: object; "
        "errorShape: TRPCDefaultErrorShape }>;",
    ]


def typescript_declaration(registry: Iterable[Procedure]) -> str:
    """The `.d.ts` text declaring `AppRouter` and the input/output types of every procedure in the registry."""
    procedures = list(registry)
    types: list[Any] = []
    for procedure in procedures:
        types.append(procedure.input.type if procedure.input is not None else None)
        types.append(_output_type(procedure))
    wanted = [type_ for type_ in types if type_ is not None]
    generated, components = msgspec.json.schema_components(wanted, ref_template=REF_PREFIX + "{name}")
    translator = _Translator(components)
    schemas = iter(generated)

    tree: dict[str, Any] = {}
    for procedure, input_type in zip(procedures, types[::2], strict=True):
        if input_type is None:
            input_ts = "void"
        else:
            input_ts = translator.type(next(schemas), f"{procedure.path} input", "    ")
            if procedure.input is not None and (procedure.input.accepts_none or procedure.input.passthrough):
                input_ts = _union([input_ts, "void"]) if input_ts != "unknown" else "unknown"
        output_ts = translator.type(next(schemas), f"{procedure.path} output", "    ")
        *routers, name = procedure.path.split(".")
        node = tree
        for router in routers:
            node = node.setdefault(router, {})
        node[name] = (procedure, input_ts, output_ts)

    def record(node: Mapping[str, Any], indent: str) -> list[str]:
        lines: list[str] = []
        for name, entry in node.items():
            if isinstance(entry, tuple):
                lines.extend(_procedure_line(entry[0], name, entry[1], entry[2], indent))
            else:
                lines.append(f"{indent}{_key(name)}: {{")
                lines.extend(record(entry, indent + "  "))
                lines.append(f"{indent}}};")
        return lines

    out = [
        _HEADER,
        "import type {",
        "  TRPCBuiltRouter,",
        "  TRPCDefaultErrorShape,",
        "  TRPCMutationProcedure,",
        "  TRPCQueryProcedure,",
        f'}} from "{TRPC_SERVER_MODULE}";',
        "",
    ]
    for name, schema in sorted(components.items()):
        out.extend(translator.component(name, schema))
        out.append("")
    out.extend(
        [
            "/** The gateway's root types: no context or meta visible to clients, tRPC's default error shape, "
            "plain JSON (no transformer). */",
            "export interface AppRouterRoot {",
            "  ctx: object;",
            "  meta: object;",
            "  errorShape: TRPCDefaultErrorShape;",
            "  transformer: false;",
            "}",
            "",
            "/** The procedures by path, as `t.router({...})` would record them. */",
            "export type AppRouterRecord = {",
            *record(tree, "  "),
            "};",
            "",
            "/** The router type for `createTRPCClient<AppRouter>(...)`. */",
            "export type AppRouter = TRPCBuiltRouter<AppRouterRoot, AppRouterRecord>;",
        ]
    )
    return "\n".join(out) + "\n"
