"""A small MCP server (the `mcp` SDK's MCPServer, formerly FastMCP) for the MCP client tests.

Run over stdio as a subprocess (`python mcp_server.py`), or imported and connected in-process (`SERVER`).
"""

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

SERVER = MCPServer("orders")


@SERVER.tool()
def lookup_order(order_id: str) -> dict:
    """Where an order is."""
    return {"order_id": order_id, "status": "shipped"}


@SERVER.tool()
def refund(order_id: str) -> str:
    """Refunds an order; this one always refuses, so the client gets a result with isError: true."""
    raise ToolError(f"order {order_id} is not refundable")


@SERVER.tool()
async def slow(seconds: float) -> str:
    """Answers after `seconds` (the client's read timeout fires first)."""
    await anyio.sleep(seconds)
    return "done"


if __name__ == "__main__":
    SERVER.run("stdio")
