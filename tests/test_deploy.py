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
