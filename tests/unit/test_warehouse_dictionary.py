"""The warehouse explains itself: every schema, object and column described, from sql/dictionary.yaml."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.warehouse import dictionary as d
from cohortpool.warehouse import load_batch, migrate, open_reader, publish
from warehouse_batches import make_tables, write_batch

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "data_contract.md"


@pytest.fixture(scope="module")
def migrated() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    return con


def test_every_schema_object_and_column_has_a_description(migrated: duckdb.DuckDBPyConnection) -> None:
    assert d.undescribed(migrated) == []
    found = d.describe(migrated)
    kinds = {o.kind for o in found.objects}
    assert kinds == {"table", "view", "macro", "table macro"}
    assert len([c for o in found.objects for c in o.columns]) > 200
    # they are real catalogue comments, readable by any client
    missing = migrated.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name NOT IN ('information_schema', 'pg_catalog') AND comment IS NULL"
    ).fetchone()
    assert missing == (0,)


def test_the_dictionary_names_nothing_that_does_not_exist(migrated: duckdb.DuckDBPyConnection) -> None:
    assert d.unknown_entries(migrated) == []


def test_a_new_undescribed_column_is_reported(tmp_path: Path) -> None:
    con = duckdb.connect()
    migrate(con)
    con.execute("ALTER TABLE raw.sites ADD COLUMN region VARCHAR")
    assert d.undescribed(con) == ["column raw.sites.region"]


def test_comments_survive_the_views_being_recreated_by_every_migrate(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    migrate(con)
    migrate(con)  # recreates every view (CREATE OR REPLACE drops comments) and comments again
    assert d.undescribed(con) == []
    con.close()


def test_the_contract_names_the_real_schemas_and_its_generated_block_is_current(
    migrated: duckdb.DuckDBPyConnection,
) -> None:
    real = {row[0] for row in migrated.execute("SELECT schema_name FROM main.schema_descriptions").fetchall()}
    assert real == {"analysis", "main", "raw", "staging"}
    text = CONTRACT.read_text(encoding="utf-8")
    block = d.contract_block(CONTRACT)
    assert set(re.findall(r"^- `(\w+)`:", block, flags=re.MULTILINE)) == real
    assert "marts" not in text, "docs/data_contract.md names a schema the warehouse does not have"
    # every schema.object the contract names in backticks exists
    objects = {o.qualified for o in d.describe(migrated).objects}
    named = set(re.findall(r"`((?:raw|staging|analysis|main|marts)\.[a-z_]+)", text))
    assert named - objects == set()
    assert block == d.to_markdown(d.describe(migrated)), (
        "docs/data_contract.md is stale: run `cohortpool db dictionary --contract docs/data_contract.md`"
    )


def test_lineage_follows_views_and_macros_down_to_the_raw_tables(migrated: duckdb.DuckDBPyConnection) -> None:
    objects = {o.qualified: o for o in d.describe(migrated).objects}
    patients = objects["analysis.patients"]
    assert patients.reads == ("analysis.patients_asof",)
    assert patients.tables == ("raw.clinical", "raw.reads")
    assert objects["analysis.site_counts"].tables == ("raw.clinical", "raw.imaging_manifest", "raw.reads")
    assert "analysis.vertebra_reads_asof" in objects["staging.reads_asof"].used_by
    assert objects["analysis.patients_asof"].parameters == ("as_of_seq",)


def test_descriptions_with_quotes_are_quoted_as_literals() -> None:
    assert d._literal("the site's") == "'the site''s'"
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INT)")
    con.execute(f"COMMENT ON COLUMN {d._identifier('main', 't', 'a')} IS {d._literal(chr(39) + '; DROP x')}")
    assert con.execute("SELECT comment FROM duckdb_columns() WHERE column_name = 'a'").fetchone() == (
        "'; DROP x",
    )


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag in ("a", "link", "script", "img") and (values.get("href") or values.get("src")):
            self.links.append(str(values.get("href") or values.get("src")))


def test_the_dictionary_page_is_self_contained_with_working_anchors(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1)))
    page_path = publish(db).dictionary
    page = _Page()
    page.feed(page_path.read_text(encoding="utf-8"))
    assert "script" not in page.tags
    assert page.links and all(link.startswith("#") for link in page.links)
    assert {link[1:] for link in page.links} <= page.ids
    text = page_path.read_text(encoding="utf-8")
    assert "One row per current patient" in text and "Fed by the tables" in text
    # the page depends on the schema only: a second night changes nothing in it
    before = page_path.read_bytes()
    load_batch(db, write_batch(tmp_path / "c", "site02", "2026-11-01", make_tables("site02", 3, seed=2)))
    assert publish(db).dictionary.read_bytes() == before


def test_cli_checks_and_writes_the_dictionary(tmp_path: Path) -> None:
    runner = CliRunner()
    checked = runner.invoke(app, ["db", "dictionary", "--contract", str(CONTRACT), "--check"])
    assert checked.exit_code == 0, checked.output
    stale = tmp_path / "contract.md"
    stale.write_text(f"# x\n{d.BEGIN_MARKER}\nold\n{d.END_MARKER}\nend\n", encoding="utf-8")
    assert runner.invoke(app, ["db", "dictionary", "--contract", str(stale), "--check"]).exit_code == 1
    assert runner.invoke(app, ["db", "dictionary", "--contract", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8").endswith(f"{d.END_MARKER}\nend\n")
    assert "`analysis.patients`" in stale.read_text(encoding="utf-8")
    html = tmp_path / "dict.html"
    db = tmp_path / "w.duckdb"
    load_batch(db, write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1)))
    written = runner.invoke(app, ["db", "dictionary", "--db", str(db), "--html", str(html)])
    assert written.exit_code == 0, written.output
    assert "raw.clinical" in html.read_text(encoding="utf-8")
    reader = open_reader(db)  # the CLI read the warehouse without keeping it open
    reader.close()
