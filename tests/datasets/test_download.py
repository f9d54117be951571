"""The resumable download helper against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tdpcr_lib.cli.data import main as data_main
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.sen12mscr.download import download_file, download_sen12mscr

PAYLOAD = bytes(range(256)) * 400  # 102 400 bytes


class _Server:
    """Serves ``PAYLOAD`` at any path; honours ``Range`` unless ``ranges`` is off; can lie about
    the length (``short``: sends fewer bytes than announced)."""

    def __init__(self) -> None:
        self.ranges, self.short, self.requests = True, False, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Range")))
                start = 0
                match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and outer.ranges:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                else:
                    self.send_response(200)
                body = PAYLOAD[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if outer.short else body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_download_and_verify(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    path = download_file(f"{server.url}/a.tar.gz", tmp_path / "a.tar.gz", md5=md5, progress=False)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "a.tar.gz.part").exists()
    download_file(f"{server.url}/a.tar.gz", path, md5=md5, progress=False)
    assert len(server.requests) == 1  # a complete file is not fetched again


def test_interrupted_download_resumes_with_range(server, tmp_path):
    part = tmp_path / "a.tar.gz.part"
    part.write_bytes(PAYLOAD[:30000])
    # what an interrupted download of this URL leaves: the .part and its validator record
    (tmp_path / "a.tar.gz.part.json").write_text(
        json.dumps({"url": f"{server.url}/a.tar.gz", "validator": '"v1"', "total": len(PAYLOAD)})
    )
    download_file(f"{server.url}/a.tar.gz", tmp_path / "a.tar.gz", progress=False)
    assert server.requests == [("/a.tar.gz", "bytes=30000-")]  # If-Range: '"v1"' (no ETag here)
    assert (tmp_path / "a.tar.gz").read_bytes() == PAYLOAD


def test_a_server_without_range_restarts_from_zero(server, tmp_path):
    server.ranges = False
    (tmp_path / "a.tar.gz.part").write_bytes(b"stale bytes")
    download_file(f"{server.url}/a.tar.gz", tmp_path / "a.tar.gz", progress=False)
    assert (tmp_path / "a.tar.gz").read_bytes() == PAYLOAD


def test_wrong_md5_is_refused_and_the_part_removed(server, tmp_path):
    with pytest.raises(DataIntegrityError, match="differs from the published"):
        download_file(f"{server.url}/a.tar.gz", tmp_path / "a.tar.gz", md5="0" * 32, progress=False)
    assert not (tmp_path / "a.tar.gz").exists() and not (tmp_path / "a.tar.gz.part").exists()


def test_truncated_transfer_is_refused(server, tmp_path):
    server.short = True
    with pytest.raises(DataIntegrityError, match="the server announced 102400"):
        download_file(f"{server.url}/a.tar.gz", tmp_path / "a.tar.gz", progress=False)
    assert not (tmp_path / "a.tar.gz").exists()


def test_download_sen12mscr_asks_for_the_official_archives(tmp_path):
    requested = []

    class _Response:
        status, headers = 200, {"Content-Length": "3"}

        def __init__(self) -> None:
            self._data = [b"abc"]

        def read(self, _size: int) -> bytes:
            return self._data.pop() if self._data else b""

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    def opener(request, timeout):
        requested.append(request.full_url)
        return _Response()

    paths = download_sen12mscr(tmp_path, seasons=["ROIs1970_fall"], land_cover=False, progress=False, opener=opener)
    assert [p.name for p in paths] == [
        "ROIs1970_fall_s1.tar.gz",
        "ROIs1970_fall_s2.tar.gz",
        "ROIs1970_fall_s2_cloudy.tar.gz",
    ]
    assert requested == [f"https://dataserv.ub.tum.de/s/m1554803/download?path=/&files={p.name}" for p in paths]


def test_cli_download_reports_a_bad_folder_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert data_main(["download", str(blocker), "--seasons", "ROIs1970_fall"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0] and "Traceback" not in err[0]


def test_cli_manifest_for_sen12mscr(tmp_path, capsys, fake_sen12mscr_module):
    root = fake_sen12mscr_module.write_fake_sen12mscr(tmp_path / "cr", patches_per_scene=2)
    assert data_main(["manifest", str(root), "--source", "sen12mscr", "--no-checksums"]) == 0
    assert (root / "manifest" / "test.csv").read_text().startswith("s1,s2,s2_cloudy,land_cover")
    assert "split manifest" in capsys.readouterr().out
