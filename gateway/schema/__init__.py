"""Schema exports generated from the procedure registry: the OpenRPC document (`gateway schema openrpc`)."""

from gateway.schema.openrpc import DEFAULT_SERVER_URL, openrpc_document

__all__ = ["DEFAULT_SERVER_URL", "openrpc_document"]
