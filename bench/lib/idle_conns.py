#!/usr/bin/env python3
"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one
`GET /healthz` on each (so the server has read a request and answered on
it, as a real idle client leaves it), then holds them all open for HOLD
seconds. Prints one line: opened, answered, failed. While holding, it
touches a file (argv[4]) so the caller knows when to measure.

usage: idle_conns.py PORT N HOLD READY_FILE
"""
import asyncio
import resource
import sys


async def one(port, sem, conns, stats):
    async with sem:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["failed"] += 1
            return
        stats["opened"] += 1
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            stats["failed"] += 1
            writer.close()
            return
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        if head.startswith(b"HTTP/1.1 200"):
            stats["answered"] += 1
        conns.append((reader, writer))


async def main():
    port, n, hold, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    stats = {"opened": 0, "answered": 0, "failed": 0}
    conns = []
    sem = asyncio.Semaphore(256)  # connects in flight at once
    await asyncio.gather(*(one(port, sem, conns, stats) for _ in range(n)))
    with open(ready, "w") as f:
        f.write("%d\n" % len(conns))
    await asyncio.sleep(hold)
    closed = sum(1 for r, _ in conns if r.at_eof())
    print("opened %d answered %d failed %d closed_by_server %d"
          % (stats["opened"], stats["answered"], stats["failed"], closed))
    for _, w in conns:
        w.close()


asyncio.run(main())
