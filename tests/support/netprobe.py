"""Traffic for tests that wire network namespaces, run inside one with ``ip netns exec``:

``python -m tests.support.netprobe serve PORT [PORT...]``: answer every TCP connection on
those ports with an HTTP response whose body is ``<peer address> <local port>``; prints
``serving`` once listening. ``python -m tests.support.netprobe fetch HOST PORT
[SOURCE]``: send an HTTP request (from ``SOURCE`` when given), print the body."""

from __future__ import annotations

import socket
import sys
import threading


def _answer(conn: socket.socket, port: int) -> None:
    with conn:
        conn.settimeout(5)
        conn.recv(4096)
        peer = conn.getpeername()[0]
        body = f"{peer} {port}"
        conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())


def _serve(sock: socket.socket, port: int) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_answer, args=(conn, port), daemon=True).start()


def serve(ports: list[int]) -> None:
    threads = []
    for port in ports:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))  # inside a test's own namespace
        sock.listen()
        threads.append(threading.Thread(target=_serve, args=(sock, port), daemon=True))
    for thread in threads:
        thread.start()
    print("serving", flush=True)
    threading.Event().wait()


def fetch(host: str, port: int, source: str | None) -> None:
    with socket.create_connection(
        (host, port), timeout=5, source_address=(source, 0) if source else None
    ) as sock:
        sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    print(data.split(b"\r\n\r\n", 1)[1].decode())


if __name__ == "__main__":
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "serve":
        serve([int(p) for p in args])
    else:
        fetch(args[0], int(args[1]), args[2] if len(args) > 2 else None)
