"""What both servers share: the dataset, strict tools, and serving an
MCPServer over stdio (the default) or streamable HTTP (`--http PORT`, port 0
allowed). The Python twin of ../ts/serve.mjs.

HTTP is stateful, one session per client, the SDK's default: `initialize`
creates a session, later requests carry `mcp-session-id`, `DELETE /mcp` ends
it. Responses are SSE streams (json_response=False), as in the TS peer.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from pydantic import ConfigDict

# Same limits as the Rust servers and the TS peer: 1 MiB per message, 1024 live sessions.
BODY_BYTES_MAX = 1 << 20
SESSIONS_MAX = 1024
HOST = "127.0.0.1"
DATA_FILE = Path(__file__).resolve().parents[3] / "servers" / "example-data.json"

# Like zod's strictObject and serde's deny_unknown_fields: unknown keys are
# refused, and values are not coerced ("5" is not an integer, 1 not a string).
STRICT = ConfigDict(extra="forbid", strict=True)


def load_data() -> dict[str, Any]:
    """The demo dataset, `servers/example-data.json`, shared with the Rust servers."""
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def strict_tool(fn: Callable[..., Any], **kwargs: Any) -> Tool:
    """`Tool.from_function`, with the arguments model made STRICT.

    MCPServer builds the arguments model from the function's signature and
    ignores unknown keys; the TS peer's zod schema refuses them. Swapping in a
    strict subclass changes both the validation and the published inputSchema
    (which gains `"additionalProperties": false`).
    """
    tool = Tool.from_function(fn, **kwargs)
    loose = tool.fn_metadata.arg_model
    strict = type(loose.__name__, (loose,), {"model_config": STRICT, "__module__": loose.__module__})
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def serve(name: str, server: MCPServer) -> None:
    """Serves `server` as the command line asks: stdio, or `--http PORT`.

    Either way SIGTERM and SIGINT stop it cleanly, with exit status 0; over
    stdio, so does EOF on stdin (the client closes it).
    """
    args = sys.argv[1:]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # raise KeyboardInterrupt, as SIGINT does
    try:
        if "--http" in args:
            serve_http(server, http_port(name, args))
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass


def http_port(name: str, args: list[str]) -> int:
    at = args.index("--http") + 1
    value = args[at] if at < len(args) else "missing"
    if not value.isdigit() or int(value) > 65535:
        print(f"{name}: --http needs a port (0 to 65535), got {value}", file=sys.stderr)
        sys.exit(2)
    return int(value)


def serve_http(server: MCPServer, port: int) -> None:
    """Listens first, so that port 0 can be reported as the port it became."""
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=False,
        max_request_body_size=BODY_BYTES_MAX,
        max_sessions=SESSIONS_MAX,
        host=HOST,  # a loopback host turns on the SDK's Host/Origin checks
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)  # before the line below: a client may connect as soon as it reads it
    print(f"listening on http://{HOST}:{sock.getsockname()[1]}/mcp", file=sys.stderr, flush=True)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal
    # (here a KeyboardInterrupt, see serve). Its access log is off.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])
