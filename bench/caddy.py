"""Debian's Caddy on 127.0.0.1 in front of a local port, with its own CA (``tls internal``): for the reverse-proxy
test and benchmark. No admin endpoint, no system trust store touched, state in a temp dir, nothing off-host."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx

from .processes import free_port, stop, wait_answering


def caddyfile(storage: Path, https_port: int, http_port: int, upstream_port: int) -> str:
    """TLS on 127.0.0.1:``https_port`` by Caddy's internal CA, proxied to 127.0.0.1:``upstream_port``. Caddy
    replaces any X-Forwarded-For a client sends with the client's address (it trusts no proxy in front of it)."""
    return f"""{{
\tadmin off
\tskip_install_trust
\tstorage file_system {storage}
\thttp_port {http_port}
\thttps_port {https_port}
\tauto_https disable_redirects
}}
https://127.0.0.1:{https_port} {{
\tbind 127.0.0.1
\ttls internal
\treverse_proxy 127.0.0.1:{upstream_port}
}}
"""


class Caddy:
    def __init__(self, workdir: Path, upstream_port: int, *, https_port: int | None = None,
                 config_text: str | None = None) -> None:
        """``config_text`` replaces the generated Caddyfile (it must serve ``https_port`` on 127.0.0.1)."""
        binary = shutil.which("caddy")
        if binary is None:
            raise RuntimeError("caddy is missing (apt-get install caddy)")
        self.port = https_port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        home = workdir / "caddy-home"
        home.mkdir(parents=True, exist_ok=True)
        config = workdir / "Caddyfile"
        config.write_text(config_text or caddyfile(workdir / "caddy-data", self.port, free_port(), upstream_port))
        self.log = workdir / "caddy.log"
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([binary, "run", "--config", str(config), "--adapter", "caddyfile"], env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> None:
        def answers() -> bool:
            try:
                return httpx.get(self.url + path, verify=False, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_answering(self.proc, answers, self.log, "caddy", timeout)

    def stop(self) -> None:
        stop(self.proc)
