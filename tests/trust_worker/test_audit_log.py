import json
import stat
from pathlib import Path

from trust_worker.audit_log import AuditLog, sql_hash


def test_entries_are_appended_hash_chained_and_private(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    log.append(query_id="q1", project_id="p", sql="SELECT 1", decision="rejected", detail="no person_id")
    log.append(
        query_id="q2",
        project_id="p",
        sql="SELECT person_id FROM person",
        decision="released",
        released={"person_count": 42},
    )
    entries = list(log.entries())
    assert [e["query_id"] for e in entries] == ["q1", "q2"]
    assert entries[1]["released"] == {"person_count": 42}
    assert entries[0]["sql_sha256"] == sql_hash("SELECT 1")
    assert log.verify() == []
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_editing_or_deleting_a_line_breaks_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(4):
        log.append(query_id=f"q{i}", project_id=None, sql="x", decision="released", released={"n": i})
    lines = log.path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["released"] = {"n": 999}
    log.path.write_text("\n".join([lines[0], json.dumps(edited, sort_keys=True), *lines[2:]]) + "\n")
    assert [b.line for b in log.verify()] == [3]
    log.path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert [b.line for b in log.verify()] == [2]
