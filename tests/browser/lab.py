"""A JupyterLab server for the browser test, and the Chromium that looks at it."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """The path of a Chromium on this machine (``$CHROMIUM`` first)."""
    for name in (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        path = name and shutil.which(name)
        if path:
            return path
    raise SystemExit("browser test: no Chromium found; install it (Debian: "
                     "apt-get install chromium) or set CHROMIUM=/path/to/chromium.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_settings(settings: Path) -> None:
    """No news or update toasts over the page."""
    where = settings / "@jupyterlab" / "apputils-extension"
    where.mkdir(parents=True, exist_ok=True)
    (where / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextmanager
def jupyterlab(root: Path, state: Path, log: Path) -> Iterator[str]:
    """Start JupyterLab on ``root`` (free port, random token); yield its base URL with the
    token as ``?token=``; always stop the server (and its kernels) afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    _quiet_settings(state / "settings")
    env = dict(os.environ, ARLAB_BUDGET="smoke", OMP_NUM_THREADS="1",
               JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"))
    cmd = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
           f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"browser test: JupyterLab did not start; see {log}")
                time.sleep(0.5)
        yield f"{base}|{token}"
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it shuts its kernels down), then SIGKILL."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    try:  # kernels left in the group
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
