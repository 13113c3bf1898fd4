import pytest

from omop.dburl import libpq_url, redact, sqlalchemy_url, with_database, with_user
from omop.errors import UsageError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5/db", "postgresql://u:p@h:5/db"),
        ("postgresql+psycopg://u:p@h:5/db", "postgresql://u:p@h:5/db"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        ("postgresql:///db?host=/run/pg&port=5433", "postgresql:///db?host=/run/pg&port=5433"),
    ],
)
def test_libpq_url_accepts_both_spellings(given: str, expected: str) -> None:
    assert libpq_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "mysql://u@h/db", "not a url", "redis://h:1/0"])
def test_libpq_url_rejects_other_urls_with_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        libpq_url(bad)


def test_redact_hides_password_only() -> None:
    assert redact("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
    assert "secret" not in redact("postgresql+psycopg://u:secret@h/db")
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_url_rewrites() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"
    assert (
        with_database("postgresql://u:p@h:1/a?sslmode=require", "b")
        == "postgresql://u:p@h:1/b?sslmode=require"
    )
    assert with_user("postgresql://u:p@h:1/a", "r", "p w") == "postgresql://r:p%20w@h:1/a"
