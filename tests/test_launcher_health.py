"""The embedded default's wait for a backend: what it reads from /health, and what it says when
the backend never gets healthy."""

import http.server
import socket
import threading
import time

import pytest

from support.launcher import EmbeddedServices, LaunchError, health

# Serves /health on the inherited listening socket (--fd N, as the launcher passes it), always 503.
NEVER_READY = """
import http.server, socket, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "starting"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket = socket.socket(fileno=int(sys.argv[sys.argv.index("--fd") + 1]))
server.serve_forever()
"""


@pytest.fixture()
def answering():
    """A loopback HTTP server whose /health answers 200 with a short body."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status": "ok"}' if self.path == "/health" else b"not here"
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_health_reads_the_status_and_the_start_of_the_body(answering):
    assert health(answering) == (200, '{"status": "ok"}')


def test_health_says_what_went_wrong_when_nothing_listens():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    status, problem = health(f"http://127.0.0.1:{port}")
    assert status == 0 and "refused" in problem.lower()


def test_a_backend_that_never_gets_healthy_is_reported_with_its_last_answer(tmp_path):
    services = EmbeddedServices(workdir=tmp_path)
    try:
        backend = services._launch("never-ready", {}, program=("-c", NEVER_READY))
        with pytest.raises(LaunchError) as raised:
            services._wait_healthy(backend, deadline=time.monotonic() + 1.5)
        message = str(raised.value)
        assert "'never-ready' was not healthy in time" in message
        assert 'HTTP 503 {"status": "starting"}' in message
    finally:
        services.stop()
    assert backend.process.poll() is not None, "the launched program was left running"
