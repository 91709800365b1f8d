"""The README's configuration reference matches the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from meshwatch.settings import Settings

README = Path(__file__).parents[2] / "README.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| `(MESHWATCH_[A-Z_]+)` \| (.+?) \| .+ \|$", re.MULTILINE)


def _settings(model: type[BaseModel], path: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        nested = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        # A structure set as a whole (the routing tree) is documented below the table.
        if nested and field.default_factory is None:
            yield from _settings(field.annotation, (*path, name))
        else:
            yield (*path, name), field.default


def _shown(default: object) -> str:
    if default is PydanticUndefined:  # built by a factory, such as models.profiles
        return "see below"
    if default is None or isinstance(default, SecretStr):
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default == "":
        return '`""`'
    return f"`{default}`"


def test_readme_lists_every_setting_with_its_variable_and_default() -> None:
    """Each setting has one README row: its key, its env variable and its real default."""
    rows = {key: (env, default) for key, env, default in ROW.findall(README.read_text())}
    expected = {
        ".".join(path): ("MESHWATCH_" + "__".join(p.upper() for p in path), _shown(default))
        for path, default in _settings(Settings)
    }
    assert rows == expected


def test_readme_lists_every_metric() -> None:
    """Every metric /metrics exports is named in the README."""
    from alerts.metrics import AlertMetrics
    from ingest.metrics import IngestMetrics

    text = README.read_text()
    registry = IngestMetrics().registry
    AlertMetrics(registry)
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}" in text, name


def test_readme_webhook_verification_snippet_accepts_a_real_signature() -> None:
    """The README's verification code, run as written, accepts what the webhook receiver signs."""
    from types import SimpleNamespace

    from alerts.receivers import sign

    text = README.read_text()
    snippet = text.split("To verify:", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    secret, body = b"s3cret", b'{"id": "a1", "state": "firing"}'
    request = SimpleNamespace(headers={"X-Meshwatch-Signature": sign(secret, body)})
    scope: dict[str, object] = {"secret": secret, "body": body, "request": request}
    exec(snippet, scope)
    assert scope["ok"] is True
