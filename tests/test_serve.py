"""scripts/serve.py, the local server: clients that hang up are not errors, real errors are."""

from __future__ import annotations

import socket
import struct
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.native  # sockets, and scripts/ is not in the Pyodide test runner's tree

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import serve  # noqa: E402

sys.path.remove(str(SCRIPTS))


def test_server_ignores_clients_that_hang_up(tmp_path: Path, capfd) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "big.bin").write_bytes(bytes(32 << 20))
    server, url = serve.serve(tmp_path)
    try:
        host, port = server.server_address[:2]
        for _ in range(3):  # ask for 32 MB, read a little, then reset the connection
            with socket.create_connection((host, port)) as sock:
                sock.sendall(b"GET /scribblenet/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.recv(1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.5)
        with urllib.request.urlopen(url) as response:  # still serving
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err


def test_server_still_reports_real_errors(tmp_path: Path, capsys) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    server, _ = serve.make_server(tmp_path, port=0)
    try:
        for error in (BrokenPipeError(), ConnectionResetError()):
            try:
                raise error
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 1))
        assert capsys.readouterr().err == ""
        try:
            raise KeyError("a bug")
        except KeyError:
            server.handle_error(None, ("127.0.0.1", 1))
        assert "KeyError" in capsys.readouterr().err
    finally:
        server.server_close()
