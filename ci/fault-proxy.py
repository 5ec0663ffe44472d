#!/usr/bin/env python3
"""A TCP fault proxy on the real network, for ci/http-chaos.sh.

Forwards 127.0.0.1:LISTEN to UPSTREAM. Each chunk it forwards, either way,
is with probability --reset the end of the connection (both sides reset,
RST, what a dying peer or middlebox does), or with probability --stall the
start of a silent stall (nothing more is forwarded on that connection, and
it stays open until the client gives up). Draws come from --seed. Prints
"listening on 127.0.0.1:PORT" once it accepts, and a count of
connections, chunks, resets and stalls when stopped (SIGTERM or SIGINT).

    python3 ci/fault-proxy.py --upstream 127.0.0.1:8083 --reset 0.025 --stall 0.025
"""

import argparse
import asyncio
import random
import signal
import socket
import struct
import sys

CHUNK_BYTES = 16 * 1024
# A stalled connection is held at most this long (no leak if a client never
# gives up); the orchestrator's timeouts are far shorter.
STALL_MAX_S = 120


class Proxy:
    def __init__(self, upstream, reset, stall, seed):
        self.upstream = upstream
        self.reset, self.stall = reset, stall
        self.rng = random.Random(seed)
        self.counts = {"connections": 0, "chunks": 0, "resets": 0, "stalls": 0}

    def draw(self):
        """What happens to the next chunk: 'reset', 'stall' or 'forward'."""
        self.counts["chunks"] += 1
        roll = self.rng.random()
        if roll < self.reset:
            self.counts["resets"] += 1
            return "reset"
        if roll < self.reset + self.stall:
            self.counts["stalls"] += 1
            return "stall"
        return "forward"

    async def handle(self, client_reader, client_writer):
        self.counts["connections"] += 1
        host, port = self.upstream
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            abort(client_writer)
            return
        writers = (client_writer, server_writer)
        ended = asyncio.Event()
        pipes = [
            asyncio.create_task(self.pipe(client_reader, server_writer, writers, ended)),
            asyncio.create_task(self.pipe(server_reader, client_writer, writers, ended)),
        ]
        await ended.wait()
        for task in pipes:
            task.cancel()
        for writer in writers:
            if not writer.is_closing():
                writer.close()

    async def pipe(self, reader, writer, writers, ended):
        try:
            while True:
                chunk = await reader.read(CHUNK_BYTES)
                if not chunk:
                    break
                fate = self.draw()
                if fate == "reset":
                    for each in writers:
                        abort(each)
                    break
                if fate == "stall":
                    await asyncio.sleep(STALL_MAX_S)
                    break
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            ended.set()


def abort(writer):
    """Closes with RST, not FIN: linger on, zero seconds."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--reset", type=float, default=0.025, help="share of chunks that reset")
    parser.add_argument("--stall", type=float, default=0.025, help="share of chunks that stall")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--upstream {args.upstream!r}: want HOST:PORT")
    if not (0 <= args.reset and 0 <= args.stall and args.reset + args.stall <= 1):
        parser.error("--reset and --stall are shares: each at least 0, together at most 1")
    proxy = Proxy((host, int(port)), args.reset, args.stall, args.seed)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.listen)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    counts = ", ".join(f"{value} {name}" for name, value in proxy.counts.items())
    print(f"fault proxy to {args.upstream}: {counts}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
