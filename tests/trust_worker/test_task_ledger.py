from pathlib import Path

from trust_worker.task_ledger import TaskLedger


def test_a_query_id_is_claimed_once_and_its_answer_kept(tmp_path: Path) -> None:
    ledger = TaskLedger(tmp_path / "executed.sqlite")
    assert ledger.claim("q1").state == "new"
    assert ledger.claim("q1").state == "interrupted"  # started, never finished: never run twice
    ledger.finish("q1", '{"sealed": true}')
    again = ledger.claim("q1")
    assert (again.state, again.envelope) == ("done", '{"sealed": true}')
    ledger.close()
    reopened = TaskLedger(tmp_path / "executed.sqlite")
    assert reopened.claim("q1").state == "done"
    assert reopened.claim("q2").state == "new"
    assert (tmp_path / "executed.sqlite").stat().st_mode & 0o077 == 0
