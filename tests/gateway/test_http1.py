"""The gateway's lean HTTP/1.1 pool against tiny real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from docsum.gateway.http1 import Http1Transport


async def _serve(answer: bytes, close_after: bool) -> tuple[asyncio.Server, int, list[int]]:
    """A server answering ``answer`` to each request; ``close_after``: then it hangs up
    (as a server does to an idle keep-alive connection). Counts connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}'
CHUNKED = b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'


async def test_keep_alive_reuses_one_connection() -> None:
    server, port, connections = await _serve(OK, close_after=False)
    pool = Http1Transport()
    for _ in range(5):
        status, headers, body = await pool.send("POST", "127.0.0.1", port, "/x", [], b"{}")
        assert (status, body) == (200, b'{"a":1}')
        assert (b"content-type", b"application/json") in headers
    assert len(connections) == 1
    await pool.aclose()
    server.close()


async def test_a_connection_closed_while_idle_is_replaced_transparently() -> None:
    server, port, connections = await _serve(OK, close_after=True)
    pool = Http1Transport()
    for _ in range(3):
        await asyncio.sleep(0.05)  # the server's close reaches us (or not) meanwhile
        status, _, _ = await pool.send("GET", "127.0.0.1", port, "/", [], b"")
        assert status == 200
    assert len(connections) == 3
    await pool.aclose()
    server.close()


async def test_idle_connections_of_a_host_no_longer_called_are_closed_and_forgotten() -> None:
    gone, gone_port, _ = await _serve(OK, close_after=False)  # a pod that left
    stays, stays_port, _ = await _serve(OK, close_after=False)
    pool = Http1Transport(keepalive_expiry_s=0.05)
    await pool.send("GET", "127.0.0.1", gone_port, "/", [], b"")
    [kept] = pool._idle[("127.0.0.1", gone_port)]
    await asyncio.sleep(0.1)
    await pool.send("GET", "127.0.0.1", stays_port, "/", [], b"")  # a release sweeps
    assert kept.closed and set(pool._idle) == {("127.0.0.1", stays_port)}
    await pool.aclose()
    gone.close()
    stays.close()


async def test_chunked_answers_and_the_httpx_interface() -> None:
    server, port, _ = await _serve(CHUNKED, close_after=False)
    async with httpx.AsyncClient(transport=Http1Transport()) as client:
        r = await client.post(f"http://127.0.0.1:{port}/v1/x?q=1", json={"t": "é"})
        assert r.status_code == 200 and r.json() == {"a": 1}
    server.close()


async def test_refused_and_dropped_connections_raise_httpx_errors() -> None:
    server, port, _ = await _serve(b"", close_after=True)  # hangs up without answering
    pool = Http1Transport()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await pool.send("GET", "127.0.0.1", port, "/", [], b"")
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await pool.send("GET", "127.0.0.1", port, "/", [], b"")
