"""`v2v serve` without a browser: one-line errors, limits, the local-only network guard."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytest.importorskip("gradio", reason="v2v[serve] extra not installed")

from v2v.errors import V2VError
from v2v.serve.app import ServeOptions, job_specs, run_job


def _spec(path):
    return next(s for s in job_specs() if s.path == path)


def test_tabs_come_from_the_job_verbs():
    paths = [s.path for s in job_specs()]
    assert paths[:3] == [("animate",), ("generate", "vid2vid"), ("dance",)]
    animate = _spec(("animate",))
    kinds = {f.dest: f.kind for f in animate.fields}
    assert kinds["source"] == kinds["driving"] == kinds["checkpoint"] == "path"
    assert kinds["mode"] == "choice" and kinds["adapt_scale"] == "flag"


def test_occupied_port_is_a_one_line_error(run_cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        rc, _, err = run_cli("serve", "--port", port)
    assert rc == 2 and err.count("\n") == 1 and "already in use" in err


def test_unsupported_upload_and_too_long_video(shared, tmp_path):
    spec = _spec(("animate",))
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    drv = str(shared / "data" / "animation" / "driving" / "08.mp4")
    with pytest.raises(V2VError, match="unsupported upload type '.txt' for --source"):
        run_job(spec, {"source": ([str(txt)], ""), "driving": ([drv], "")}, ServeOptions(), str(tmp_path))
    src = str(shared / "data" / "animation" / "source" / "05.png")
    with pytest.raises(V2VError, match="150 frames; this server accepts at most 100"):
        run_job(spec, {"source": ([src], ""), "driving": ([drv], "")}, ServeOptions(max_frames=100),
                str(tmp_path))


GUARD = """
import socket, sys
from v2v.serve.app import install_network_guard
blocked = install_network_guard()
try:
    socket.create_connection(("example.invalid", 80), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("refused:", e)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname(), timeout=2); c.close(); srv.close()
print("local ok", blocked)
"""


def test_network_guard_refuses_other_hosts_and_allows_loopback():
    r = subprocess.run([sys.executable, "-c", GUARD], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "CONNECTED" not in r.stdout and "local-only" in r.stdout
    assert "local ok ['example.invalid:80']" in r.stdout
