"""`make run` keeps the mail catcher on port 1025 across restarts, so the CLI (which reads 1025 from the
sample settings) still reaches it."""

from __future__ import annotations

import socket

from devhost.mailcatcher import free_port, port_is_free


def test_a_port_left_in_time_wait_by_the_previous_run_counts_as_free() -> None:
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))  # reuse_address, as the catcher's server binds
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection stays in TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    assert port_is_free(port)


def test_a_port_someone_listens_on_is_not_free() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert not port_is_free(listener.getsockname()[1])
