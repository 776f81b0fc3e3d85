"""Serve dist/ on 127.0.0.1 under a sub-path, as GitHub Pages does (``/scribblenet/``).

Usage: ``python scripts/serve.py [--port 8000] [--base /scribblenet/] [--dist dist]``.
From tests: ``server, url = serve(dist_dir, port=0)`` runs it in a daemon thread;
stop it with ``server.shutdown(); server.server_close()``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

__all__ = ["MIME_TYPES", "QuietServer", "make_server", "serve"]

ROOT = Path(__file__).resolve().parent.parent

# Set explicitly: the OS mime database differs between machines (and lacks .mjs/.wasm on some).
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".npz": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".gz": "application/octet-stream",  # served as bytes, never as Content-Encoding
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


class SubPathHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``directory`` at ``base``; ``/`` redirects to ``base``."""

    base = "/scribblenet/"
    quiet = False
    no_cache = True
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **MIME_TYPES,
    }

    def _route(self) -> bool:
        """Rewrite self.path below base; answer redirects and 404s here. True = serve it."""
        path = urlsplit(self.path).path
        if path in ("/", self.base.rstrip("/")):
            self.send_response(302)
            self.send_header("Location", self.base)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        if not path.startswith(self.base):
            self.send_error(404, f"not under {self.base}")
            return False
        self.path = "/" + self.path[len(self.base) :]
        return True

    def do_GET(self) -> None:
        """Serve a file below base."""
        if self._route():
            super().do_GET()

    def do_HEAD(self) -> None:
        """Serve headers for a file below base."""
        if self._route():
            super().do_HEAD()

    def end_headers(self) -> None:
        """Ask browsers to revalidate, so a rebuilt dist/ is seen on reload."""
        if self.no_cache:
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        """Log like the stdlib unless quiet."""
        if not self.quiet:
            super().log_message(format, *args)


class QuietServer(http.server.ThreadingHTTPServer):
    """A threaded server that ignores clients hanging up mid-response (no traceback)."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Report errors like the stdlib, except a client that went away (reload, Stop)."""
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset, …
            return
        super().handle_error(request, client_address)


def make_server(
    dist_dir: Path | str,
    port: int = 8000,
    base: str = "/scribblenet/",
    host: str = "127.0.0.1",
    quiet: bool = False,
    no_cache: bool = True,
) -> tuple[QuietServer, str]:
    """Create (but do not start) a threaded server for ``dist_dir``; return it and its URL."""
    dist = Path(dist_dir).resolve()
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist / 'index.html'} not found: run scripts/build_site.py")
    if not base.startswith("/"):
        base = "/" + base
    if not base.endswith("/"):
        base += "/"
    handler = type(
        "Handler", (SubPathHandler,), {"base": base, "quiet": quiet, "no_cache": no_cache}
    )
    server = QuietServer((host, port), functools.partial(handler, directory=str(dist)))
    return server, f"http://{host}:{server.server_address[1]}{base}"


def serve(
    dist_dir: Path | str, port: int = 0, base: str = "/scribblenet/", host: str = "127.0.0.1"
) -> tuple[QuietServer, str]:
    """Serve ``dist_dir`` from a daemon thread (quietly); return the server and page URL.

    Parameters
    ----------
    dist_dir : the built site (contains index.html).
    port : TCP port; 0 picks a free one.
    base : URL sub-path the site lives under, as on GitHub Pages.
    host : interface to bind; loopback only by default.

    Returns
    -------
    (server, url): call ``server.shutdown(); server.server_close()`` to stop it.
    """
    server, url = make_server(dist_dir, port=port, base=base, host=host, quiet=True)
    threading.Thread(target=server.serve_forever, name="scribblenet-serve", daemon=True).start()
    return server, url


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--base", default="/scribblenet/")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:
        server, url = make_server(args.dist, args.port, args.base, args.host, args.quiet)
    except (FileNotFoundError, OSError) as exc:
        print(f"serve: ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"Serving {args.dist} at {url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
