"""moto's threaded server, made to really go away when stopped and to come back on the same port."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class RestartableMotoServer(ThreadedMotoServer):
    """`stop()` closes the listening socket and every open connection, so clients meet a real outage
    (connection refused, connection reset). ThreadedMotoServer's own stop leaves both open: the port
    cannot be bound again, and keep-alive clients (boto3 is one) would still be served. moto's backends are
    module globals, so buckets, objects and queues survive a restart, as they would on S3."""

    def __init__(self, port: int) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _server_entry(self) -> None:
        connections, lock = self._connections, self._connections_lock

        class TrackedHandler(MotoRequestHandler):
            def setup(self) -> None:
                super().setup()
                with lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    connections.discard(self.connection)
                super().finish()

            def log(self, type: str, message: str, *args: object) -> None:
                pass  # a line per request on stderr

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, threaded=True, request_handler=TrackedHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self) -> None:
        super().stop()
        assert self._server is not None
        self._server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
