"""npm_pack against a real npm and a registry on loopback: the flags it passes are ones the
installed npm accepts (npm 11 refused a retry maximum below its default minimum), and a
failure says what npm said."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from babilab.haystack import FetchError
from babilab.haystack.cache import npm_pack

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")

NAME, VERSION = "babilab-probe", "1.0.0"


def _tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in [("package/package.json",
                            json.dumps({"name": NAME, "version": VERSION})),
                           ("package/index.js", "module.exports = 1;\n")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A one-package npm registry on 127.0.0.1, and an empty npm cache, for this test only."""
    tgz = _tarball()
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json" if body else "text/plain")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tarball_path = f"/{NAME}/-/{NAME}-{VERSION}.tgz"
    files[tarball_path] = tgz
    files[f"/{NAME}"] = json.dumps({
        "name": NAME, "dist-tags": {"latest": VERSION},
        "versions": {VERSION: {"name": NAME, "version": VERSION, "dist": {
            "tarball": base + tarball_path,
            "shasum": hashlib.sha1(tgz).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}},
    }).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("npm_config_registry", base + "/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_update_notifier", "false")
    yield tgz
    server.shutdown()
    server.server_close()


def test_npm_pack_fetches_through_the_registry_with_an_empty_npm_cache(registry, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    got = npm_pack(f"{NAME}@{VERSION}", dest)
    assert got == dest / f"{NAME}-{VERSION}.tgz"
    assert got.read_bytes() == registry


def test_npm_pack_failure_carries_npms_reason(registry, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(FetchError, match=r"npm pack babilab-probe@9\.9\.9: .* failed: npm error"):
        npm_pack(f"{NAME}@9.9.9", dest)
    assert list(dest.iterdir()) == []
