"""`gateway schema openrpc|typescript`: write a schema export generated from the procedure registry, or check it.

`gateway schema typescript` writes clients/typescript/app-router.d.ts, the router's TypeScript type (`AppRouter`,
see gateway.schema.typescript) for the app's `createTRPCClient<AppRouter>`; same --output/--check and exit codes.

The document (see gateway.schema.openrpc) is written as JSON with 2-space indentation, keys in the generator's order
(stable: registration order for methods, sorted component names) and a trailing newline, so regenerating it without
a change in the procedures, their types, their docstrings or the package version gives the same bytes.

The server URL is `--server-url`, else the settings' public URL (GATEWAY_PUBLIC_URL, by default
http://GATEWAY_HOST:GATEWAY_PORT, i.e. http://127.0.0.1:3000), followed by /rpc. The checked-in openrpc.json is made
with the defaults.

Exit codes: 0 written, or (with --check) up to date; 1 with --check, the file is missing or differs (a summary of
the differences is printed); 2 the file cannot be read or written.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from gateway.registry import Registry
from gateway.schema.openrpc import openrpc_document
from gateway.schema.typescript import typescript_declaration
from gateway.settings import Settings
from procedures import build_router

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_TYPESCRIPT_OUTPUT",
    "add_command",
    "render_openrpc",
    "render_typescript",
]

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "openrpc.json"
"""openrpc.json at the repository root (next to pyproject.toml)."""
DEFAULT_TYPESCRIPT_OUTPUT = DEFAULT_OUTPUT.parent / "clients" / "typescript" / "app-router.d.ts"
"""The router's TypeScript declaration, for the app to import with `import type { AppRouter }`."""
EXIT_STALE = 1
EXIT_IO = 2
_DIFF_LINES = 40


def render_openrpc(server_url: str) -> str:
    """The text of openrpc.json for the production router, as `gateway schema openrpc` writes it."""
    document: dict[str, Any] = openrpc_document(Registry(build_router()), server_url)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_typescript() -> str:
    """The text of app-router.d.ts for the production router, as `gateway schema typescript` writes it."""
    return typescript_declaration(Registry(build_router()))


def _diff_summary(current: str, wanted: str, path: Path) -> str:
    diff = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{path} (checked in)",
            f"{path} (generated now)",
            n=1,
        )
    )
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    shown = "".join(diff[:_DIFF_LINES])
    more = f"... ({len(diff) - _DIFF_LINES} more diff lines)\n" if len(diff) > _DIFF_LINES else ""
    return f"{removed} line(s) to remove, {added} to add:\n{shown}{more}"


def _write_or_check(command: str, path: Path, wanted: str, check: bool) -> int:
    """Write `wanted` to `path`, or (check) compare them; the exit code of `gateway schema <command>`."""
    if check:
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(
                f"gateway schema {command}: {path} is missing; run `gateway schema {command}`",
                file=sys.stderr,
            )
            return EXIT_STALE
        except OSError as error:
            print(f"gateway schema {command}: {path}: {error.strerror}", file=sys.stderr)
            return EXIT_IO
        if current == wanted:
            print(f"{path} is up to date")
            return 0
        print(
            f"gateway schema {command}: {path} differs from what the registry generates now; "
            f"run `gateway schema {command}` to regenerate it\n{_diff_summary(current, wanted, path)}",
            file=sys.stderr,
            end="",
        )
        return EXIT_STALE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted, encoding="utf-8")
    except OSError as error:
        print(f"gateway schema {command}: {path}: {error.strerror}", file=sys.stderr)
        return EXIT_IO
    print(f"wrote {path}")
    return 0


def _openrpc(args: argparse.Namespace, settings: Settings) -> int:
    server_url: str = args.server_url or settings.public_url
    return _write_or_check("openrpc", args.output, render_openrpc(server_url), args.check)


def _typescript(args: argparse.Namespace, settings: Settings) -> int:
    return _write_or_check("typescript", args.output, render_typescript(), args.check)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "schema",
        help="schema exports generated from the procedure registry (openrpc: the OpenRPC document; "
        "typescript: the router's type for @trpc/client)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(logs_to_stderr=True)
    actions = parser.add_subparsers(dest="schema_command", required=True, metavar="FORMAT")
    openrpc = actions.add_parser(
        "openrpc",
        help="write openrpc.json (OpenRPC 1.3.2) for the JSON-RPC endpoint, or --check it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    openrpc.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help="where to write (or, with --check, what to compare); default: openrpc.json at the repository root",
    )
    openrpc.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a summary of the differences if the file is not what would be written",
    )
    openrpc.add_argument(
        "--server-url",
        metavar="URL",
        help="the gateway's base URL, /rpc is appended (default: the public URL, GATEWAY_PUBLIC_URL, "
        "else http://GATEWAY_HOST:GATEWAY_PORT)",
    )
    openrpc.set_defaults(run=_openrpc)
    typescript = actions.add_parser(
        "typescript",
        help="write clients/typescript/app-router.d.ts (the `AppRouter` type for createTRPCClient), or --check it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    typescript.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_TYPESCRIPT_OUTPUT,
        metavar="PATH",
        help="where to write (or, with --check, what to compare); default: clients/typescript/app-router.d.ts",
    )
    typescript.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a summary of the differences if the file is not what would be written",
    )
    typescript.set_defaults(run=_typescript)
