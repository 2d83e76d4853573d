"""A TCP proxy on a free loopback port that a test switches off and on: storage that stops answering.

Off: every open connection is cut (reset) and every new one is reset at once, as a dead endpoint looks to
a client. On: bytes are relayed both ways to the target. Put it between one client and Azurite, e.g. the
app's table endpoint, while the queue keeps working."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        sock.close()


class SwitchableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = True
        self._closed = False
        self.refused = 0  # connections reset while off (a figure for the test's report)
        self._thread = threading.Thread(target=self._accept_forever, name="tcp-proxy", daemon=True)

    def start(self) -> SwitchableProxy:
        self._thread.start()
        return self

    def down(self) -> None:
        with self._lock:
            self._up = False
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def up(self) -> None:
        with self._lock:
            self._up = True

    def stop(self) -> None:
        self._closed = True
        self.down()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_forever(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
                if not up:
                    self.refused += 1
            if not up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _reset(source)
            _reset(sink)
