"""The Dockerfile and its pinned runtime requirements match pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DEPENDENCIES = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


def _pins(path: str = "deploy/requirements.txt") -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            assert re.fullmatch(r"==[^,*]+", str(req.specifier)), f"not pinned: {line}"
            pins[canonicalize_name(req.name)] = req
    return pins


def _closure(requirements: list[Requirement] = DEPENDENCIES) -> set[str]:
    """Names of `requirements` (the runtime's) and their dependencies, from the metadata."""
    seen: dict[str, set[str]] = {}

    def walk(req: Requirement, extras: set[str]) -> None:
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            return
        name = canonicalize_name(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            return
        seen[name] = seen.get(name, set()) | set(req.extras)
        for sub in importlib.metadata.requires(req.name) or []:
            walk(Requirement(sub), seen[name])

    for req in requirements:
        walk(req, set())
    return set(seen)


def test_every_dependency_is_pinned_to_a_version_its_specifier_allows() -> None:
    pins = _pins()
    for req in DEPENDENCIES:
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not pinned"
        version = str(pin.specifier).removeprefix("==")
        assert req.specifier.contains(version, prereleases=True), f"{pin} violates {req}"
        assert set(req.extras) <= set(pin.extras), f"{pin} lacks extras of {req}"


def test_pins_are_exactly_the_runtime_dependencies_and_their_dependencies() -> None:
    """No test or optional extras in the image, and nothing missing (pip runs --no-deps)."""
    assert set(_pins()) == _closure()
    for extra in ("pytest", "ruff", "mypy", "matplotlib", "amqtt"):
        assert extra not in _pins()


def test_cluster_pins_are_what_the_cluster_extra_needs_beyond_the_runtime() -> None:
    """deploy/requirements-cluster.txt: psycopg for a cluster's instances, pinned, no more."""
    pins = _pins("deploy/requirements-cluster.txt")
    (extra,) = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["cluster"]]
    assert set(pins) == _closure([extra]) - _closure()
    pin = pins[canonicalize_name(extra.name)]
    assert extra.specifier.contains(str(pin.specifier).removeprefix("=="))


def test_dockerfile_is_slim_non_root_runtime_only_with_a_healthz_check() -> None:
    instructions = re.findall(r"^([A-Z]+)\s+((?:.*\\\n)*.*)", DOCKERFILE, re.MULTILINE)
    by_kind: dict[str, list[str]] = {}
    for kind, args in instructions:
        by_kind.setdefault(kind, []).append(args)
    assert by_kind["FROM"] == ["python:3.11-slim"]
    user = by_kind["USER"][-1]
    assert user not in ("root", "0")
    assert "useradd" in DOCKERFILE and user in DOCKERFILE.split("useradd", 1)[1].split("\n")[0]
    runs = " ".join(by_kind["RUN"])
    assert "-r deploy/requirements.txt" in runs
    assert "pip install --no-deps ." in runs
    assert "[test]" not in DOCKERFILE and ".[" not in runs
    health = by_kind["HEALTHCHECK"][0]
    assert "/healthz" in health and "python" in health and "curl" not in health
    assert json.loads(by_kind["ENTRYPOINT"][0]) == ["meshwatch"]
    assert json.loads(by_kind["CMD"][-1]) == ["run"]


def test_dockerfile_healthcheck_probe_is_valid_python() -> None:
    probe = json.loads(re.search(r"CMD (\[.*\])", DOCKERFILE.split("HEALTHCHECK", 1)[1])[1])
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "healthcheck", "exec")


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copies = re.findall(r"^COPY\s+(.+)\s+\S+$", DOCKERFILE, re.MULTILINE)
    assert copies, "the Dockerfile copies nothing"
    for sources in copies:
        for source in sources.split():
            assert source.rstrip("/") in allowed, source
            assert (ROOT / source).exists(), source
