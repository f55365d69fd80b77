"""The node agent: lets a remote node audit its own copies, so only digests cross the network.

:func:`create_app` builds the ASGI app over a local storage adapter;
:func:`serve` runs it with uvicorn (``preserve node serve``).  The client
side is :class:`storage_adapters.node.NodeAdapter`.
"""

from .app import create_app
from .config import AgentConfig, load_keys
from .server import build_server, parse_listen, serve
from .witness import load_witness_key

__all__ = ["AgentConfig", "build_server", "create_app", "load_keys", "load_witness_key", "parse_listen", "serve"]
