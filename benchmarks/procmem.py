"""Memory of running processes from ``/proc`` (Linux): resident set and proportional set sizes.

PSS divides shared pages among the processes sharing them, so summing it over a stack (PostgreSQL's
shared buffers are mapped by every backend) gives the stack's real footprint; RSS would count them again
for every backend.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def _field_kb(path: Path, name: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kb(pid: int) -> int | None:
    return _field_kb(PROC / str(pid) / "status", "VmRSS")


def pss_kb(pid: int) -> int | None:
    """Proportional set size, falling back to RSS where smaps_rollup is not readable."""
    value = _field_kb(PROC / str(pid) / "smaps_rollup", "Pss")
    return value if value is not None else rss_kb(pid)


def _parent(pid_dir: Path) -> int | None:
    try:
        stat = (pid_dir / "stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent(entry)
            if parent is not None:
                parents.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def tree_pss_kb(root: int) -> int:
    return sum(pss_kb(pid) or 0 for pid in process_tree(root))


def meminfo_kb(name: str) -> int | None:
    return _field_kb(PROC / "meminfo", name)
