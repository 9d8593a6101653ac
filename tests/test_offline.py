"""The README's promise with the network cut off: inside a fresh network namespace (only loopback),
`omnimini serve` answers the official SDK, streaming and not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

CLIENT = textwrap.dedent("""
    import json, sys, time, httpx, openai
    url = "http://127.0.0.1:8000"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    msgs = [{"role": "user", "content": "Say hi."}]
    r = c.chat.completions.create(model="omnimini-mini", messages=msgs, max_tokens=8)
    s = c.chat.completions.create(model="omnimini-mini", messages=msgs, max_tokens=8, stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in s)
    try:
        httpx.get("http://198.51.100.1/", timeout=2)   # TEST-NET-2: must be unreachable here
        online = True
    except httpx.HTTPError:
        online = False
    print(json.dumps({"plain": r.choices[0].message.content, "streamed": text, "online": online}))
""")


def _can_unshare() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs permission to create a network namespace")
def test_serve_answers_the_sdk_without_network(tmp_path):
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    shell = (f"ip link set lo up || exit 1; "
             f"{sys.executable} -m omnimini serve --port 8000 --threads 2 --data-dir {tmp_path} "
             f"> {tmp_path}/server.log 2>&1 & srv=$!; "
             f"{sys.executable} {script}; status=$?; kill $srv; wait $srv; exit $status")
    r = subprocess.run(["unshare", "-n", "bash", "-c", shell], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr + (tmp_path / "server.log").read_text()
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["online"] is False
    assert out["plain"] and out["streamed"]
