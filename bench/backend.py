"""
A small JSON HTTP/1.1 backend for the benchmark, standard library only.

Usage::

    python3 bench/backend.py --port 9002 --delay 0.5

Answers every request with the same small JSON object after C{--delay} seconds, keeps connections
alive, and listens on 127.0.0.1 only. The benchmark uses it as the slow (500 ms) backend, and as the
fast backend in smoke mode where nginx is not available. It stops by itself after C{--max-seconds}
so that it can never outlive a benchmark that lost track of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json

BODY = json.dumps({"hello": "world", "n": 1}, separators=(",", ":")).encode("ascii")
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode("ascii") + b"\r\n"
    b"\r\n" + BODY
)
MAX_HEADER_BYTES = 65536


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    return parser.parse_args()


def content_length(head: bytes) -> int:
    """Return the request body's length announced in the request head C{head} (0 if none)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or b"0")
    return 0


def wants_close(head: bytes) -> bool:
    """Tell whether the request head C{head} asks to close the connection after the answer."""
    lowered = head.lower()
    return b"\r\nconnection: close" in lowered or head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0")


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Answer requests on one connection until the peer closes it or asks to."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER_BYTES:
                break
            length = content_length(head)
            if length:
                await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
            if wants_close(head):
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(arguments: argparse.Namespace) -> None:
    """Listen on 127.0.0.1 and serve until C{--max-seconds} have passed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, arguments.delay)

    listener = await asyncio.start_server(handle, "127.0.0.1", arguments.port, backlog=1024)
    async with listener:
        await asyncio.sleep(arguments.max_seconds)


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_arguments()))
    except KeyboardInterrupt:
        pass
