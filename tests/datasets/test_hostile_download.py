"""``tdpcr data download`` against a local server that behaves like real ones (issue 26, items
11, 14, 19, 20 and ``--no-progress``): 416 with ``Content-Range: bytes */N``, replies without
Content-Length, HTML error pages, stalls, changed files (ETag / If-Range). 127.0.0.1 only."""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tdpcr_lib.cli.data import main as data_main
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.sen12mscr.download import download_file

PAYLOAD = gzip.compress(bytes(range(256)) * 4000, compresslevel=0)  # a real gzip, ~1 MB
NAME = "ROIs1970_fall_s1.tar.gz"


class RealisticServer:
    """Serves ``body`` with an ETag; honours Range and If-Range as RFC 9110 says; answers a
    past-the-end Range with 416 and ``Content-Range: bytes */N``. Modes: ``no_length`` (no
    Content-Length, connection closed after ``cut`` bytes), ``html`` (a 200 error page),
    ``stall`` (half the body, then silence), ``status`` (e.g. 404/500 with an HTML page)."""

    def __init__(self) -> None:
        self.body, self.etag, self.mode, self.status, self.cut = PAYLOAD, '"v1"', "", 200, None
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _page(self, code: int, text: str) -> None:
                data = f"<html><body>{text}</body></html>".encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                outer.requests.append(
                    {
                        "method": self.command,
                        "range": self.headers.get("Range"),
                        "if_range": self.headers.get("If-Range"),
                    }
                )
                if outer.status != 200:
                    return self._page(outer.status, "Not Found")
                if outer.mode == "html":
                    return self._page(200, "Please log in")
                body, n = outer.body, len(outer.body)
                match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if_range = self.headers.get("If-Range")
                use_range = match is not None and (if_range is None or if_range == outer.etag)
                if use_range:
                    start = int(match.group(1))
                    if start >= n:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{n}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{n - 1}/{n}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("ETag", outer.etag)
                self.send_header("Content-Type", "application/gzip")
                if outer.mode == "no_length":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    body = body[: outer.cut] if outer.cut is not None else body
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if outer.mode.startswith("stall"):
                    self.wfile.write(body[: len(body) // 2] if outer.mode == "stall" else b"")
                    self.wfile.flush()
                    time.sleep(3)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{NAME}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    srv = RealisticServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _get(server, tmp_path, **kwargs) -> Path:
    return download_file(server.url, tmp_path / NAME, progress=False, timeout=1.0, **kwargs)


# ---- item 11 ----------------------------------------------------------------------------------
def test_a_cut_reply_without_content_length_is_not_kept(server, tmp_path):
    server.mode, server.cut = "no_length", len(PAYLOAD) // 2
    with pytest.raises(DataIntegrityError, match="not a complete gzip"):
        _get(server, tmp_path)
    assert not (tmp_path / NAME).exists()
    server.cut = None
    assert _get(server, tmp_path).read_bytes() == PAYLOAD


def test_an_html_page_is_not_kept_as_the_archive(server, tmp_path):
    server.mode = "html"
    with pytest.raises(DataIntegrityError, match="HTML page"):
        _get(server, tmp_path)
    assert not (tmp_path / NAME).exists()


def test_a_stale_part_without_validator_is_not_resumed(server, tmp_path):
    (tmp_path / (NAME + ".part")).write_bytes(b"x" * 1000)  # some other file's bytes
    assert _get(server, tmp_path).read_bytes() == PAYLOAD


def test_a_file_changed_on_the_server_restarts_through_if_range(server, tmp_path):
    server.mode = "stall"
    with pytest.raises(Exception, match="timed out|stopped sending"):
        _get(server, tmp_path)
    part = tmp_path / (NAME + ".part")
    assert 0 < part.stat().st_size < len(PAYLOAD)
    server.mode, server.etag = "", '"v2"'
    server.body = gzip.compress(bytes(reversed(range(256))) * 4000, compresslevel=0)
    assert _get(server, tmp_path).read_bytes() == server.body
    assert server.requests[-1]["if_range"] == '"v1"'


def test_an_interrupted_download_resumes_with_if_range(server, tmp_path):
    server.mode = "stall"
    with pytest.raises(Exception, match="timed out|stopped sending"):
        _get(server, tmp_path)
    server.mode = ""
    assert _get(server, tmp_path).read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] and server.requests[-1]["if_range"] == '"v1"'


def test_concurrent_downloads_into_one_root_are_locked(server, tmp_path):
    import fcntl

    lock = open(tmp_path / (NAME + ".lock"), "a+")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process holding the download
    try:
        with pytest.raises(Exception, match="another download"):
            _get(server, tmp_path)
    finally:
        lock.close()
    assert not (tmp_path / NAME).exists()


def test_an_existing_archive_of_the_wrong_size_is_rechecked(server, tmp_path):
    (tmp_path / NAME).write_bytes(PAYLOAD + b"extra bytes of a second writer")
    with pytest.raises(DataIntegrityError, match="incomplete or corrupt"):
        _get(server, tmp_path)
    (tmp_path / NAME).write_bytes(PAYLOAD)
    assert _get(server, tmp_path).read_bytes() == PAYLOAD


# ---- item 19: 416 ------------------------------------------------------------------------------
@pytest.mark.parametrize("part", ["equal", "longer"])
def test_416_for_a_complete_or_longer_part_recovers(server, tmp_path, part):
    data = PAYLOAD if part == "equal" else PAYLOAD + b"junk"
    (tmp_path / (NAME + ".part")).write_bytes(data)
    (tmp_path / (NAME + ".part.json")).write_text(
        f'{{"url": "{server.url}", "validator": "\\"v1\\"", "total": {len(PAYLOAD)}}}'
    )
    assert _get(server, tmp_path).read_bytes() == PAYLOAD
    assert hashlib.md5((tmp_path / NAME).read_bytes()).hexdigest() == hashlib.md5(PAYLOAD).hexdigest()


def test_a_folder_named_like_the_part_is_one_line(server, tmp_path, capsys):
    (tmp_path / (NAME + ".part")).mkdir()
    code = data_main(["download", str(tmp_path), "--seasons", "ROIs1970_fall", "--no-progress", "--no-land-cover"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "not a file" in err


# ---- item 14: errors name the archive and the URL, exit 1 ---------------------------------
@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_name_archive_and_url(server, tmp_path, status, capsys, monkeypatch):
    server.status = status
    _cli_against(server, monkeypatch)
    code = data_main(["download", str(tmp_path), "--seasons", "ROIs1970_fall", "--no-progress", "--no-land-cover"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert NAME in err and server.url in err and str(status) in err


def test_connection_refused_names_archive_and_url(tmp_path, capsys, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    class Dead:
        url = f"http://127.0.0.1:{port}/{NAME}"

    _cli_against(Dead, monkeypatch)
    code = data_main(["download", str(tmp_path), "--seasons", "ROIs1970_fall", "--no-progress", "--no-land-cover"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and NAME in err and Dead.url in err


def test_a_stall_names_the_archive_and_leaves_no_empty_part(server, tmp_path):
    server.mode = "stall0"  # the server sends headers and then nothing
    with pytest.raises(Exception, match=NAME):
        _get(server, tmp_path)
    assert not (tmp_path / (NAME + ".part")).exists()


def _cli_against(server, monkeypatch) -> None:
    """Point the official archive list at the local server (one archive) with a short timeout."""
    from tdpcr_lib.datasets.sen12mscr import download
    from tdpcr_lib.datasets.sen12mscr.layout import Archive

    monkeypatch.setattr(download, "official_archives", lambda seasons, land_cover: [Archive(NAME, server.url)])
    real = download.download_file
    monkeypatch.setattr(download, "download_file", lambda *a, **k: real(*a, **{**k, "timeout": 1.0}))


def test_no_progress_prints_no_bar(server, tmp_path, capsys, monkeypatch):
    _cli_against(server, monkeypatch)
    assert data_main(["download", str(tmp_path), "--seasons", "ROIs1970_fall", "--no-progress", "--no-land-cover"]) == 0
    captured = capsys.readouterr()
    assert "%|" not in captured.err and "it/s" not in captured.err
