#!/usr/bin/env python3
"""WebSocket client for tests/http_websocket.rs: connects through sluice with the `websockets`
package (installed by `make deps-test`), checks that text and binary messages and a ping come
back from the echo backend, then closes cleanly.

usage: ws_client.py ws://127.0.0.1:PORT/PATH
Prints `backend=NAME` and `ok` on success; exits non-zero with a reason otherwise.
"""

import asyncio
import os
import sys
import time

try:
    from websockets.asyncio.client import connect
except ImportError as e:  # missing or too old (the asyncio client came in websockets 13)
    print(
        f"python3 cannot import websockets.asyncio.client ({e}); "
        "`make deps-test` installs the websockets package",
        file=sys.stderr,
    )
    sys.exit(3)

TIMEOUT = 10
# Seconds the closing handshake plus TCP close may take.
CLOSE_LIMIT = 3


async def main(uri: str) -> None:
    async with connect(uri, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=1 << 22) as ws:
        backend = ws.response.headers.get("x-backend", "")
        print(f"backend={backend}", flush=True)

        await ws.send("hello through sluice")
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if got != "hello through sluice":
            raise SystemExit(f"text echo differs: {got!r}")

        blob = os.urandom(200_000)
        await ws.send(blob)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if got != blob:
            raise SystemExit(f"binary echo differs ({len(got)} bytes back, sent {len(blob)})")

        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, TIMEOUT)

        for i in range(20):
            await ws.send(f"message {i}")
        for i in range(20):
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if got != f"message {i}":
                raise SystemExit(f"message {i} came back as {got!r}")
        closing = time.monotonic()
    # Leaving the block ran the closing handshake; the client then waits (up to close_timeout)
    # for the server side to close TCP. Through a proxy that passes the close on, that is quick.
    took = time.monotonic() - closing
    if took > CLOSE_LIMIT:
        raise SystemExit(f"closing took {took:.1f}s: the TCP close did not come through")
    print("ok", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
