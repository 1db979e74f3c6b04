"""The mails a request kicks go out from one sender thread per process, never from a request's thread.

A mail server can be slow or hang (every socket operation may wait MAIL_TIMEOUT_SECONDS): sent from
the request's own thread, after its response, each completion would hold one of the worker's
threads for that long, and a burst of completions could hold them all. Here the request only puts
the row's id on a bounded queue, which costs nothing, and the process's sender thread sends the
queued rows, those queued together over one connection.

- Nothing is lost: the row was committed before it was queued. A full queue (QUEUE_SIZE rows
  waiting: the server is slower than the completions) leaves the row pending, logged, for
  `flask mail send-pending`; so does a process that dies with rows queued.
- The thread starts with the first kick in its process (create_app starts none, so a preloading
  server forks no thread: tests/test_preload.py) and ends after IDLE_SECONDS with nothing to send.
- At a clean exit (a worker stopped or restarted), the process waits up to DRAIN_SECONDS for the
  queue to empty; what is left stays pending.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from typing import Callable, Sequence

log = logging.getLogger(__name__)

QUEUE_SIZE = 200  # rows waiting in one process
BATCH = 20  # rows sent over one connection
IDLE_SECONDS = 60.0
DRAIN_SECONDS = 5.0


class Courier:
    """A bounded queue of outbox ids and the thread sending them with `send(ids)` (never raises)."""

    def __init__(self, send: Callable[[Sequence[int]], None], *, size: int = QUEUE_SIZE,
                 idle_seconds: float = IDLE_SECONDS):
        self._send = send
        self._size = size
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue[int] | None = None
        self._thread: threading.Thread | None = None

    def put(self, outbox_id: int) -> bool:
        """Queue `outbox_id` for the sender thread; False (the row stays pending) when the queue is full."""
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (a forked worker has its own)
                self._pid, self._queue, self._thread = os.getpid(), queue.Queue(self._size), None
                atexit.register(self.join, DRAIN_SECONDS)
            try:
                self._queue.put_nowait(outbox_id)
            except queue.Full:
                log.warning("mail %s: the send queue is full (%s); left for send-pending", outbox_id, self._size)
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="mail-courier",
                                                daemon=True)
                self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued row has been sent or left pending; False if `timeout` came first."""
        waiting = self._queue
        if waiting is None or self._pid != os.getpid():
            return True
        with waiting.all_tasks_done:
            return waiting.all_tasks_done.wait_for(lambda: not waiting.unfinished_tasks, timeout)

    def _run(self, waiting: queue.Queue[int]) -> None:
        while True:
            try:
                batch = [waiting.get(timeout=self._idle_seconds)]
            except queue.Empty:
                with self._lock:
                    if waiting.empty():  # a put after this sees no thread and starts one
                        self._thread = None
                        return
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            except Exception:  # noqa: BLE001 - `send` should not raise; if it does, the thread goes on
                log.exception("mail courier: sending %s raised; left for send-pending", batch)
            finally:
                for _ in batch:
                    waiting.task_done()
