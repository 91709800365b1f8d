"""``meshwatch web`` and ``meshwatch web adduser`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from argon2 import PasswordHasher


def _meshwatch(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHWATCH_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_web_without_users_file_refuses_to_start_in_one_line(tmp_path) -> None:
    """No users file and no --read-only: one line naming both ways out, exit 2."""
    result = _meshwatch(tmp_path, "web", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "web.users_file" in result.stderr and "--read-only" in result.stderr


def test_adduser_writes_an_argon2_hash_without_echoing_the_password(tmp_path) -> None:
    """The password read from stdin appears nowhere but as a hash that verifies."""
    users = tmp_path / "users.yaml"
    result = _meshwatch(
        tmp_path,
        "web",
        "adduser",
        "ana",
        "--role",
        "maintainer",
        "--users-file",
        str(users),
        stdin="s3cret-pass\n",
    )
    assert result.returncode == 0, result.stderr
    assert "s3cret-pass" not in result.stdout + result.stderr
    [entry] = yaml.safe_load(users.read_text())
    assert (entry["name"], entry["role"]) == ("ana", "maintainer")
    assert entry["hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(entry["hash"], "s3cret-pass")
    assert users.stat().st_mode & 0o777 == 0o600


def test_adduser_again_replaces_the_entry(tmp_path) -> None:
    """A second adduser of the same name changes its role; the file keeps one entry."""
    users = tmp_path / "users.yaml"
    for role in ("maintainer", "viewer"):
        _meshwatch(
            tmp_path,
            "web",
            "adduser",
            "ana",
            "--role",
            role,
            "--users-file",
            str(users),
            stdin="pw\n",
        )
    assert [u["role"] for u in yaml.safe_load(users.read_text())] == ["viewer"]
