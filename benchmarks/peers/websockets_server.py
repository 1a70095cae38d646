# SPDX-License-Identifier: Apache-2.0
"""Python websockets: its own broadcast() helper over every open connection on /msg."""
import asyncio
import os
import sys

from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


async def handler(websocket):
    CONNECTIONS.add(websocket)
    try:
        async for message in websocket:
            broadcast(CONNECTIONS, message)
    finally:
        CONNECTIONS.discard(websocket)


async def main(port):
    # PEER_DEFLATE=1: permessage-deflate with websockets' defaults (compare.py's idle run).
    compression = "deflate" if os.environ.get("PEER_DEFLATE") == "1" else None
    async with serve(handler, "127.0.0.1", port, compression=compression, max_size=1 << 20):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
