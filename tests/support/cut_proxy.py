"""A loopback HTTP relay that cuts the connection of one chosen request, as a connection broken by an outage or
an idle-connection reset looks to the client: `before` (the request never reaches the server) or `after` (the
server did it, but its answer is lost). Every other request, on the same keep-alive connection too, is relayed.

Requests are read one at a time (headers, then a Content-Length body: what the Azure SDKs send); answers are
relayed as they come."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class CutProxy:
    def __init__(self, target_port: int, marker: bytes, mode: str = "after", times: int = 1) -> None:
        assert mode in ("before", "after")
        self.target = ("127.0.0.1", target_port)
        self.marker, self.mode, self.left = marker, mode, times
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_forever, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_forever(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_cut(self, request_line: bytes) -> bool:
        with self._lock:
            if self.left > 0 and self.marker in request_line:
                self.left -= 1
                self.cut += 1
                return True
        return False

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target, timeout=10)
        muted = threading.Event()

        def answers() -> None:
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    if not muted.is_set():
                        client.sendall(data)
            _reset(client)

        threading.Thread(target=answers, daemon=True).start()
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                if self._take_cut(head.split(b"\r\n")[0]):
                    if self.mode == "after":
                        muted.set()
                        upstream.sendall(head + b"\r\n\r\n" + body)
                        time.sleep(1.0)  # the server has done it; its answer never arrives
                    return
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            return
        finally:
            _reset(client)
            _reset(upstream)
