"""The operators' docs (docs/) show examples that work with the code as it is."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from alerts.commands.handler import COMMANDS
from alerts.settings import AlertsSettings, RoutesFile, RulesFile
from ingest.decode import Decoder
from ingest.topic import TopicTemplate
from meshwatch.settings import Settings

DOCS = Path(__file__).parents[2] / "docs"
VARIABLE = re.compile(r"\bMESHWATCH_[A-Z0-9_]*[A-Z0-9]")


def _blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def _variables(model: type[BaseModel], prefix: str) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        names.add(variable)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= _variables(field.annotation, variable + "__")
    return names


def _alert_documents() -> list[dict[str, object]]:
    documents = [yaml.safe_load(block) for block in _blocks("alerts-cookbook.md", "yaml")]
    return [
        d for d in documents if isinstance(d, dict) and {"rules", "route", "receivers"} & d.keys()
    ]


def test_contract_payloads_are_accepted_by_the_decoder() -> None:
    """Every ```json payload in contract.md decodes to readings on a plant/<site>/<asset> topic."""
    decoder = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    blocks = _blocks("contract.md", "json")
    assert len(blocks) >= 6
    for block in blocks:
        readings = decoder.decode("plant/berlin/cnc-1/telemetry", block.encode(), time.time_ns())
        expected = len(json.loads(block)) if block.lstrip().startswith("[") else 1
        assert len(readings) == expected, block
        assert all(r.metrics for r in readings), block


def test_cookbook_rules_and_routes_validate_as_their_files() -> None:
    """Each cookbook YAML block is a valid rules file or routes file."""
    documents = _alert_documents()
    assert len(documents) >= 5
    for document in documents:
        if "rules" in document:
            RulesFile.model_validate(document)
        else:
            RoutesFile.model_validate(document)


def test_cookbook_blocks_are_consistent_alerts_sections() -> None:
    """Each cookbook YAML block holds together: unique names, every routed receiver defined."""
    documents = _alert_documents()
    assert len(documents) >= 5
    for document in documents:
        AlertsSettings.model_validate(document)


def test_every_variable_named_in_the_docs_is_a_setting() -> None:
    """Every MESHWATCH_* variable the docs name is a real setting's environment variable."""
    known = _variables(Settings, "MESHWATCH_")
    pages = sorted(DOCS.glob("*.md"))
    named = {page.name: set(VARIABLE.findall(page.read_text(encoding="utf-8"))) for page in pages}
    assert any(named.values()), "no page names a MESHWATCH_* variable"
    for page, variables in named.items():
        assert variables <= known, (page, sorted(variables - known))


def test_security_acl_table_names_every_command_topic_ops_may_publish() -> None:
    """security.md's ``ops`` row names each command the pipeline answers, as the ACL allows."""
    acl = (Path(__file__).parents[2] / "deploy/mosquitto/acl").read_text(encoding="utf-8")
    assert "user ops\ntopic read meshwatch/#\ntopic write meshwatch/cmd/#\n" in acl
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith("| `ops`")]
    publish = row.split("|")[2]
    assert "`meshwatch/cmd/#`" in publish
    assert [c for c in COMMANDS if f"`meshwatch/cmd/{c}`" not in publish] == []


def _data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "meshwatch.db")
    with db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE telemetry (site TEXT, asset TEXT, ts INTEGER, fields TEXT)")
        db.execute("INSERT INTO telemetry VALUES ('berlin', 'cnc-1', 1, '{}')")
    db.close()
    return data_dir


def _rows(copy: Path) -> list[tuple[str, ...]]:
    db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        return db.execute("SELECT asset FROM telemetry").fetchall()
    finally:
        db.close()


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 command-line tool")
def test_backup_with_the_sqlite3_tool_gives_a_copy_that_opens(tmp_path: Path) -> None:
    """The documented shell backup, run as written, copies meshwatch.db into BACKUP."""
    script = next(b for b in _blocks("operations.md", "sh") if '".backup' in b)
    data_dir, backup = _data_dir(tmp_path), tmp_path / "backup"
    env = {"PATH": os.environ["PATH"], "DATA_DIR": str(data_dir), "BACKUP": str(backup)}
    subprocess.run(["bash", "-euc", script], check=True, env=env, timeout=60)
    assert _rows(backup / "meshwatch.db") == [("cnc-1",)]


def test_backup_with_python_gives_a_copy_that_opens(tmp_path: Path) -> None:
    """The documented Python backup, run as written, copies meshwatch.db."""
    snippet = next(b for b in _blocks("operations.md", "python") if ".backup(" in b)
    scope: dict[str, object] = {"__name__": "docs"}
    exec(snippet, scope)
    data_dir, backup = _data_dir(tmp_path), tmp_path / "backup"
    scope["backup"](data_dir, backup)  # type: ignore[operator]
    assert _rows(backup / "meshwatch.db") == [("cnc-1",)]
