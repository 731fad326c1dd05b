"""deploy/: the Caddyfile through Caddy's own adapter, the systemd units through systemd-analyze verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("contactcard.service", "contactcard-backup.service", "contactcard-backup.timer")
INSTALLED = "/opt/contactcard/bin/contactcard"


def directives(unit: str) -> list[tuple[str, str]]:
    """(key, value) for every assignment, in order (a unit may repeat a key, e.g. Environment=)."""
    pairs = []
    for line in (DEPLOY / unit).read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def values(unit: str, key: str) -> list[str]:
    return [v for k, v in directives(unit) if k == key]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CONTACTCARD_REQUIRE_DEPLOY_TOOLS"):  # CI installs them: missing is a failure there
            pytest.fail(f"{tool} is required (CONTACTCARD_REQUIRE_DEPLOY_TOOLS is set) but not installed")
        pytest.skip(f"{tool} is not installed here, so this file was not validated (apt-get install {tool})")
    return path


def adapted() -> tuple[dict[str, Any], str]:
    caddy = need("caddy")
    result = subprocess.run([caddy, "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={"HOME": str(ROOT / "deploy"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config, result.stderr


def test_caddyfile_adapts_cleanly_with_tls_h3_compression_and_the_app_behind() -> None:
    config, warnings = adapted()
    assert warnings.strip() == ""  # not even "unnecessary header_up" or "not formatted"
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]  # a site address with a host name: automatic https
    assert server["protocols"] == ["h1", "h2", "h3"]
    (site,) = server["routes"]
    assert site["match"] == [{"host": ["cards.example.co.jp"]}]
    handlers = {h["handler"]: (route.get("match"), h) for route in site["handle"][0]["routes"] for h in route["handle"]}
    encode_match, encode = handlers["encode"]
    assert set(encode["encodings"]) == {"zstd", "gzip"} and encode_match == [{"path": ["/c/*", "/static/*"]}]
    blocked_match, blocked = handlers["static_response"]
    assert blocked["status_code"] == 404 and blocked_match == [{"path": ["/metrics", "/readyz"]}]
    _, proxy = handlers["reverse_proxy"]
    assert proxy["upstreams"] == [{"dial": "127.0.0.1:8000"}]
    assert "trusted_proxies" not in json.dumps(config)  # a client's own X-Forwarded-For is replaced, never kept


def test_caddyfile_is_formatted() -> None:
    caddy = need("caddy")
    text = (DEPLOY / "Caddyfile").read_text()
    result = subprocess.run([caddy, "fmt", "-"], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout == text


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    # verify insists that ExecStart's program exists: point the copies at this checkout's contactcard
    here = str(Path(sys.executable).with_name("contactcard"))
    assert Path(here).exists()
    for unit in UNITS:
        (tmp_path / unit).write_text((DEPLOY / unit).read_text().replace(INSTALLED, here))
    result = subprocess.run([analyze, "verify", *(str(tmp_path / u) for u in UNITS)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""  # an unknown key is only a warning


def test_the_service_is_hardened_and_configured_for_the_proxy() -> None:
    unit = "contactcard.service"
    assert values(unit, "ExecStart") == [f"{INSTALLED} serve"]
    assert values(unit, "User") == ["contactcard"] and values(unit, "StateDirectory") == ["contactcard"]
    for key, expected in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                          ("Restart", "on-failure"), ("ProtectHome", "yes"), ("UMask", "0077")):
        assert values(unit, key) == [expected], key
    assert int(values(unit, "LimitNOFILE")[0]) >= 16384
    env = dict(v.split("=", 1) for v in values(unit, "Environment"))
    assert env["CONTACTCARD_DB"].startswith("/var/lib/contactcard/")
    assert env["CONTACTCARD_SECRET_FILE"].startswith("/var/lib/contactcard/")
    assert env["CONTACTCARD_BASE_URL"].startswith("https://")
    assert env["CONTACTCARD_TRUSTED_PROXIES"] == "127.0.0.1" and env["CONTACTCARD_HOST"] == "127.0.0.1"


def test_the_nightly_backup_checks_its_copy_and_keeps_two_weeks() -> None:
    (command,) = values("contactcard-backup.service", "ExecStart")
    assert f"{INSTALLED} backup --output" in command and f"{INSTALLED} check --database" in command
    assert values("contactcard-backup.service", "Type") == ["oneshot"]
    assert "-mtime +14 -delete" in values("contactcard-backup.service", "ExecStartPost")[0]
    assert values("contactcard-backup.timer", "Persistent") == ["true"]
    assert values("contactcard-backup.timer", "OnCalendar")


def test_readme_deploys_with_these_files() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    for name in ("Caddyfile", *UNITS):
        assert f"deploy/{name}" in section or name in section, name


def local_caddyfile(storage: Path, https_port: int, http_port: int, upstream_port: int) -> str:
    """deploy/Caddyfile as shipped, moved onto 127.0.0.1 with Caddy's internal CA and a temp state directory."""
    text = (DEPLOY / "Caddyfile").read_text()
    edits = (
        ("{\n\tservers {", f"{{\n\tadmin off\n\tskip_install_trust\n\tstorage file_system {storage}\n"
                           f"\thttp_port {http_port}\n\thttps_port {https_port}\n\tauto_https disable_redirects\n"
                           "\tservers {"),
        ("cards.example.co.jp {", f"https://127.0.0.1:{https_port} {{\n\tbind 127.0.0.1\n\ttls internal\n"),
        ("reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{upstream_port}"),
    )
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.mark.slow
def test_the_shipped_caddyfile_in_front_of_the_real_server(tmp_path: Path) -> None:
    need("caddy")
    import socket
    import ssl

    import httpx2 as httpx

    from bench.caddy import Caddy
    from bench.processes import free_port

    from .live_server import LiveServer

    port = free_port()
    https = f"https://127.0.0.1:{port}"
    app = LiveServer({"CONTACTCARD_DB": str(tmp_path / "cc.sqlite3"), "CONTACTCARD_SECRET_FILE": str(tmp_path / "k"),
                      "CONTACTCARD_BASE_URL": https, "CONTACTCARD_TRUSTED_PROXIES": "127.0.0.1"}, tmp_path / "app.log")
    app.cli("employee", "add", "--email", "taro@acme.example", "--name", "山田 太郎")
    card = app.cli("card", "issue", "--employee", "taro@acme.example").split()[0].removeprefix(https)
    app.start()
    caddy = Caddy(tmp_path, app.port, https_port=port,
                  config_text=local_caddyfile(tmp_path / "caddy-data", port, free_port(), app.port))
    try:
        caddy.wait_ready()
        with httpx.Client(transport=httpx.HTTPTransport(verify=False), base_url=https, timeout=15,
                          follow_redirects=False) as client:
            page = client.get(card, headers={"Accept-Encoding": "gzip"})
            assert page.status_code == 200 and page.headers["content-encoding"] == "gzip" and "<html" in page.text
            assert 'h3=":' in page.headers["alt-svc"]  # HTTP/3 offered
            login = client.get("/login", headers={"Accept-Encoding": "gzip"})  # a page with a CSRF token
            assert login.status_code == 200 and "content-encoding" not in login.headers
            for internal in ("/metrics", "/readyz"):
                assert client.get(internal).status_code == 404  # through the proxy: not there
            assert client.get("/healthz").status_code == 200
        with httpx.Client(base_url=app.base, timeout=15) as direct:  # on the machine: there
            assert direct.get("/metrics").status_code == 200 and direct.get("/readyz").status_code == 200
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
    finally:
        caddy.stop()
        app.stop()
