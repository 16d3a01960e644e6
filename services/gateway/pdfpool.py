"""PDFs read in worker processes, one document per process at a time.

PDFium is not thread-safe and cannot be interrupted: a page made to be costly (ten million
characters of text, a million vector objects) holds whatever runs it for seconds and takes
gigabytes. So the gateway never runs PDFium itself. A document checks out one of
``pdf_workers`` processes (:mod:`.pdfworker`) for its whole read and asks it for one page at a
time; meanwhile the gateway's event loop, and every other document, go on. A call that runs
past ``pdf_page_timeout_s``, a worker whose resident memory passes
``pdf_worker_max_rss_bytes``, and a request that is cancelled (its deadline, its client gone)
stop the worker with SIGKILL: the page is answered 422 (or the request ends), and a fresh
worker takes the place of the old one. A worker left idle for ``pdf_worker_idle_s`` is
stopped too, so the memory of a burst of PDFs comes back; the next PDF starts a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import sys
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..common.errors import DocsumError, InvalidInput, PayloadTooLarge
from . import metrics

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: How often a busy worker's memory is looked at, in seconds.
_WATCH_S = 0.05
#: Seconds a worker has to close its document before it is stopped instead.
_CLOSE_S = 5.0
_POOLS: weakref.WeakSet[PdfPool] = weakref.WeakSet()


def _rss(pid: int) -> int | None:
    """Resident memory of process ``pid`` in bytes (Linux), else None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def workers_rss() -> float:
    """Resident memory of every PDF worker of this process, in bytes (for the gauge)."""
    return float(sum(pool.rss() for pool in list(_POOLS)))


metrics.PDF_WORKERS_RSS.set_function(workers_rss)


class _Worker:
    """One worker process and its pipes; one call at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.over_memory = False
        self.stopped = False
        self.idle_since = 0.0

    @classmethod
    async def start(cls) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "docsum.gateway.pdfworker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.stopped

    def rss(self) -> int:
        return 0 if self.stopped else (_rss(self.proc.pid) or 0)

    def stop(self, reason: str | None) -> None:
        """SIGKILL, counted by ``reason`` (None: the pool is closing); its pipes closed."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.returncode is None:
            self.proc.kill()
            if reason is not None:
                metrics.PDF_WORKERS_STOPPED.labels(reason).inc()
                log.info("PDF worker stopped", extra={"reason": reason, "pid": self.proc.pid})
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # else its transport waits on the pipe, past the loop's end

    async def call(
        self, header: dict[str, Any], blob: bytes, *, what: str, timeout_s: float, max_rss: int
    ) -> tuple[dict[str, Any], bytes]:
        """Send one request and wait for its answer; raise the worker's error as a 4xx."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        watch = asyncio.create_task(self._watch(max_rss))
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                head = json.dumps(header).encode()
                self.proc.stdin.write(_LENGTH.pack(len(head)) + head + _LENGTH.pack(len(blob)))
                self.proc.stdin.write(blob)
                await self.proc.stdin.drain()
                answer, data = await self._read()
        except TimeoutError:
            if not deadline.expired():
                raise
            self.stop("time")
            raise InvalidInput(
                f"{what} took longer than {timeout_s:g} s and was stopped: the PDF is too "
                "costly to read",
                limit="pdf_page_timeout_s",
                allowed=timeout_s,
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError):
            if self.over_memory:
                raise InvalidInput(
                    f"{what} needed more than {max_rss // 2**20} MiB of memory and was "
                    "stopped: the PDF is too costly to read",
                    limit="pdf_worker_max_rss_bytes",
                    allowed=max_rss,
                ) from None
            self.stop("crashed")
            raise InvalidInput(f"{what} failed: PDFium could not read the file") from None
        except BaseException:  # cancelled (deadline, client gone): the call cannot be taken back
            self.stop("cancelled")
            raise
        finally:
            watch.cancel()
        if "error" in answer:
            error = PayloadTooLarge if answer.get("status") == 413 else InvalidInput
            raise error(str(answer.get("message", "the PDF could not be read")))
        return answer, data

    async def _read(self) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdout is not None
        read = self.proc.stdout.readexactly
        (n,) = _LENGTH.unpack(await read(4))
        answer = json.loads(await read(n))
        (n,) = _LENGTH.unpack(await read(4))
        return answer, await read(n) if n else b""

    async def _watch(self, max_rss: int) -> None:
        """Stop the worker as soon as its resident memory passes ``max_rss``."""
        while True:
            await asyncio.sleep(_WATCH_S)
            rss = _rss(self.proc.pid)
            if rss is not None and rss > max_rss and not self.stopped:
                self.over_memory = True
                self.stop("memory")
                return


class PdfHandle:
    """A document open in a worker: its pages' sizes, and one request at a time for them."""

    def __init__(self, worker: _Worker, pool: PdfPool) -> None:
        self._worker = worker
        self._pool = pool
        self._lock = asyncio.Lock()
        self.page_count = 0
        #: Each page's (width, height) in points.
        self.sizes: list[tuple[float, float]] = []

    async def _call(
        self, header: dict[str, Any], what: str, blob: bytes = b""
    ) -> tuple[dict[str, Any], bytes]:
        async with self._lock:
            return await self._worker.call(
                header,
                blob,
                what=what,
                timeout_s=self._pool.call_timeout_s,
                max_rss=self._pool.max_rss_bytes,
            )

    async def _open(self, data: bytes, max_pages: int) -> None:
        answer, _ = await self._call(
            {"op": "open", "max_pages": max_pages}, "opening the PDF", data
        )
        self.page_count = int(answer["pages"])
        self.sizes = [(float(w), float(h)) for w, h in answer["sizes"]]

    async def page_text(
        self, number: int, min_chars: int, max_chars: int
    ) -> tuple[str | None, int, bool]:
        """Page ``number``'s text layer (None if it is not usable text), its length in
        characters, and whether it held more than ``max_chars``."""
        answer, _ = await self._call(
            {"op": "text", "page": number, "min_chars": min_chars, "max_chars": max_chars},
            f"reading the text of page {number}",
        )
        text = answer["text"]
        return (
            (None if text is None else str(text)),
            int(answer["chars"]),
            bool(answer["truncated"]),
        )

    async def embedded_scan(self, number: int, min_dpi: float, max_dpi: float) -> bytes | None:
        """The page's scan as the JPEG the scanner embedded, or None (see pdf.py)."""
        answer, data = await self._call(
            {"op": "scan", "page": number, "min_dpi": min_dpi, "max_dpi": max_dpi},
            f"looking at page {number}",
        )
        return data if answer["found"] else None

    async def render_png(self, number: int, dpi: int, max_pixels: int) -> tuple[bytes, float]:
        """Page ``number`` as a grey PNG, and the seconds the worker took."""
        answer, png = await self._call(
            {"op": "render", "page": number, "dpi": dpi, "max_pixels": max_pixels},
            f"rendering page {number}",
        )
        return png, float(answer["seconds"])

    async def close(self) -> bool:
        """Close the document; False if the worker could not be used again."""
        if not self._worker.alive:
            return False
        try:
            async with asyncio.timeout(_CLOSE_S):
                await self._call({"op": "close"}, "closing the PDF")
        except (DocsumError, TimeoutError):
            return False
        return self._worker.alive


class PdfPool:
    """Up to ``workers`` documents read at once, each in its own worker process; a document
    waits for a free worker (within its request's deadline)."""

    def __init__(
        self, workers: int, max_rss_bytes: int, call_timeout_s: float, idle_s: float = 30.0
    ) -> None:
        self.max_rss_bytes = max_rss_bytes
        self.call_timeout_s = call_timeout_s
        self.idle_s = idle_s
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        #: Every worker started and not yet seen to exit.
        self._started: set[_Worker] = set()
        _POOLS.add(self)

    def rss(self) -> int:
        return sum(w.rss() for w in [*self._idle, *self._busy])

    @asynccontextmanager
    async def document(self, data: bytes, max_pages: int) -> AsyncIterator[PdfHandle]:
        """``data`` open in a worker of its own until the block ends."""
        async with self._slots:
            worker = await self._checkout()
            handle = PdfHandle(worker, self)
            reusable = False
            try:
                await handle._open(data, max_pages)
                yield handle
            finally:
                try:
                    reusable = await handle.close()
                finally:
                    self._busy.discard(worker)
                    if reusable:
                        self._rest(worker)
                    else:
                        worker.stop("unusable")

    def _rest(self, worker: _Worker) -> None:
        """Back among the idle workers, until it is taken or ``idle_s`` passes."""
        loop = asyncio.get_running_loop()
        worker.idle_since = loop.time()
        self._idle.append(worker)
        loop.call_later(self.idle_s, self._retire, worker, worker.idle_since)

    def _retire(self, worker: _Worker, idle_since: float) -> None:
        if worker in self._idle and worker.idle_since == idle_since:
            self._idle.remove(worker)
            worker.stop("idle")

    async def _checkout(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                self._busy.add(worker)
                return worker
        worker = await _Worker.start()
        self._busy.add(worker)
        self._started.add(worker)
        reaped = asyncio.ensure_future(worker.proc.wait())
        reaped.add_done_callback(lambda _: self._started.discard(worker))
        return worker

    async def aclose(self) -> None:
        """Stop every worker and wait until each has exited."""
        for worker in list(self._started):
            worker.stop(None)
            await worker.proc.wait()
        self._idle.clear()
        self._busy.clear()
