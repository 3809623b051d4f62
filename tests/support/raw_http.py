"""One HTTP exchange written and read as bytes, for requests no HTTP client would send
(a bad request line, two Content-Length headers): the server's status, headers (names in
lower case) and body, read until it closes the connection."""

from __future__ import annotations

import socket


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return int(status.split(" ")[1]), headers, body
