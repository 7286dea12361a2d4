"""JSON-RPC 2.0 over HTTP (`POST /rpc`): the registry's procedures as the methods openrpc.json describes.

`Dispatcher` turns a request body into the answer body (framework-free); `RpcRoute` is the aiohttp handler around it.
"""

from __future__ import annotations

from gateway.jsonrpc.dispatch import TRANSPORT, Dispatcher, Parsed
from gateway.jsonrpc.route import RPC_PATH, RpcRoute

__all__ = ["RPC_PATH", "TRANSPORT", "Dispatcher", "Parsed", "RpcRoute"]
