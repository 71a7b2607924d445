"""Self-documenting SQL: every public function has a COMMENT and an example, every table of
schema authz a COMMENT, every authz.* setting a description, and docs/reference.md is what
scripts/reference.sh generates from them."""
import importlib.util
from pathlib import Path

from conftest import connect

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("reference", ROOT / "scripts" / "reference.py")
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)


def test_everything_public_is_described(database):
    with connect(database) as conn:
        assert reference.missing(conn) == []


def test_the_committed_reference_is_up_to_date(database):
    with connect(database) as conn:
        rendered = reference.render(conn)
    assert rendered == (ROOT / "docs" / "reference.md").read_text(), \
        "docs/reference.md is out of date: run scripts/reference.sh"
    # Every public function is in it.
    with connect(database) as conn:
        names = {row[0] for row in conn.execute(reference.FUNCTIONS)}
    assert len(names) >= 24 and all(f"### `{name}(" in rendered for name in names)


def test_a_missing_comment_is_caught(database):
    with connect(database) as conn:
        conn.execute("COMMENT ON FUNCTION authz_current_user() IS NULL")
        conn.execute("COMMENT ON TABLE authz.grants IS NULL")
        problems = reference.missing(conn)
        conn.rollback()
    assert problems == ["function authz_current_user() has no COMMENT", "table authz.grants has no COMMENT"]
