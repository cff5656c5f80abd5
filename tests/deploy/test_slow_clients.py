"""Slow clients (slowloris) cannot starve the app behind nginx; without nginx they can.

Two sync gunicorn workers on the production settings. Sixty connections send their headers a
line at a time and never finish. Through nginx, normal requests are still answered within a
second each; straight at gunicorn (the negative control: the proxy switched off) two such
connections hold both workers and a normal request waits. nginx also ends a connection whose
headers have not arrived within client_header_timeout (10 s).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.slow]

PROMPT_SECONDS = 1.0


@contextlib.contextmanager
def slowloris(address: str, connections: int) -> Iterator[list[socket.socket]]:
    """Open ``connections`` that send a header line every half second and never finish."""
    host, port = address.rsplit(":", 1)
    sockets = []
    for _ in range(connections):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sockets.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join()
        for sock in sockets:
            sock.close()


def timed_get(url: str, timeout: float) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        response.read()
    return time.monotonic() - started


def test_normal_requests_are_answered_promptly_during_a_slowloris(nginx_server: str) -> None:
    with slowloris(nginx_server, connections=60):
        time.sleep(1.5)  # the attack is in place: every connection has trickled
        durations = [timed_get(f"http://{nginx_server}/healthz", timeout=5) for _ in range(10)]
    assert max(durations) < PROMPT_SECONDS, durations


def test_without_the_proxy_two_slow_clients_hold_both_workers(gunicorn_server: str) -> None:
    # Negative control: the same attack, smaller, straight at gunicorn's two sync workers.
    with slowloris(gunicorn_server, connections=2):
        time.sleep(1.5)
        with pytest.raises(OSError, match="timed out"):  # nobody is free to answer
            timed_get(f"http://{gunicorn_server}/healthz", timeout=3)


def test_nginx_closes_a_connection_whose_headers_never_finish(nginx_server: str) -> None:
    host, port = nginx_server.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        # Nothing more is sent; nginx gives up at client_header_timeout and resets the
        # connection (reset_timedout_connection), freeing its buffers at once.
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - started
    assert data == b"", data
    assert 9 < waited < 13, waited
