"""A warehouse that explains itself: comments from one source, a data dictionary page, the contract's table.

``sql/dictionary.yaml`` is the one description of every schema, table, view, macro and column. After
every migration :func:`apply_dictionary` writes it into the catalogue (``COMMENT ON``; schema
descriptions into ``main.schema_descriptions``, as DuckDB has no ``COMMENT ON SCHEMA``), so any client
reads it with ``duckdb_columns()`` / ``duckdb_views()``. :func:`describe` reads the commented catalogue
back with each object's lineage (which objects it reads, which tables feed it), and renders it as the
generated block of ``docs/data_contract.md`` (:func:`to_markdown`) and as a self-contained HTML page in
the spirit of dbt docs (:func:`write_dictionary_html`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cohortpool.warehouse import sql
from cohortpool.warehouse.connect import open_reader

SOURCE = "dictionary.yaml"
#: markers around the generated part of docs/data_contract.md
BEGIN_MARKER = "<!-- BEGIN generated data dictionary (cohortpool db dictionary --contract FILE) -->"
END_MARKER = "<!-- END generated data dictionary -->"
_COMMENT_KEYWORD = {"table": "TABLE", "view": "VIEW", "macro": "MACRO", "table macro": "MACRO TABLE"}
_REFERENCE = re.compile(r'"?\b(raw|staging|analysis|main)"?\s*\.\s*"?([a-z_][a-z0-9_]*)\b"?')


class DictionaryError(ValueError):
    """``sql/dictionary.yaml`` is malformed; the message names the entry."""


@dataclass(frozen=True)
class Source:
    """``sql/dictionary.yaml`` as read."""

    schemas: Mapping[str, str]
    #: descriptions of columns by name, wherever they appear
    columns: Mapping[str, str]
    #: ``schema.object`` -> (description, its own column descriptions)
    objects: Mapping[str, tuple[str, Mapping[str, str]]]

    def describe_column(self, obj: str, column: str) -> str | None:
        """The object's own description of the column, else the shared one, else None."""
        own = self.objects.get(obj, ("", {}))[1]
        return own.get(column) or self.columns.get(column)


def _texts(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        raise DictionaryError(f"sql/{SOURCE}: {where} must map names to non-empty text")
    return {k: " ".join(v.split()) for k, v in value.items()}


def load_source() -> Source:
    """Read and check ``sql/dictionary.yaml``."""
    try:
        data = yaml.safe_load(sql.load_data_file(SOURCE))
    except yaml.YAMLError as exc:
        raise DictionaryError(f"sql/{SOURCE}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise DictionaryError(f"sql/{SOURCE}: expected a mapping with schemas, columns and objects")
    objects: dict[str, tuple[str, Mapping[str, str]]] = {}
    for name, entry in (data.get("objects") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("description"), str):
            raise DictionaryError(f"sql/{SOURCE}: objects.{name} needs a description")
        objects[name] = (
            " ".join(entry["description"].split()),
            _texts(entry.get("columns"), f"{name}.columns"),
        )
    return Source(_texts(data.get("schemas"), "schemas"), _texts(data.get("columns"), "columns"), objects)


def _literal(text: str) -> str:
    """A SQL string literal (DuckDB's COMMENT takes only a literal: its parser refuses a parameter)."""
    return "'" + text.replace("'", "''") + "'"


def _identifier(*parts: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _comment_statements(con: duckdb.DuckDBPyConnection, source: Source) -> list[str]:
    """``COMMENT ON`` every catalogue object and column the source describes.

    Names come from the catalogue itself (never from the YAML) and descriptions are quoted as literals,
    so the statements are built here rather than in ``sql/``: COMMENT cannot bind parameters.
    """
    statements: list[str] = []
    for schema, name, kind, _definition, comment in sql.query_rows(con, "dictionary/select_objects"):
        entry = source.objects.get(f"{schema}.{name}")
        if entry is not None and entry[0] != comment:  # tables keep theirs; recreated views do not
            keyword = _COMMENT_KEYWORD[kind]
            statements.append(f"COMMENT ON {keyword} {_identifier(schema, name)} IS {_literal(entry[0])}")
    for schema, name, column, _type, comment in sql.query_rows(con, "dictionary/select_columns"):
        text = source.describe_column(f"{schema}.{name}", column)
        if text is not None and text != comment:
            statements.append(f"COMMENT ON COLUMN {_identifier(schema, name, column)} IS {_literal(text)}")
    return statements


def apply_dictionary(con: duckdb.DuckDBPyConnection) -> None:
    """Write ``sql/dictionary.yaml`` into the catalogue (in the caller's transaction, if any).

    Run after the views are (re)created, since ``CREATE OR REPLACE VIEW`` drops a view's comments.
    Objects the source does not describe are left without a comment (a test insists there are none).
    """
    source = load_source()
    statements = _comment_statements(con, source)
    if statements:
        con.execute(";\n".join(statements))  # one round trip
    sql.run_sql(con, "dictionary/clear_schema_descriptions")
    present = {row[0] for row in sql.query_rows(con, "dictionary/select_schemas")}
    for schema, text in sorted(source.schemas.items()):
        if schema in present:
            sql.run_sql(con, "dictionary/insert_schema_description", schema_name=schema, description=text)


# --- reading the commented catalogue back ---------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDoc:
    """One column as the catalogue describes it."""

    name: str
    data_type: str
    description: str


@dataclass(frozen=True)
class ObjectDoc:
    """One table, view or macro with its description and lineage."""

    schema: str
    name: str
    kind: str
    description: str
    columns: tuple[ColumnDoc, ...] = ()
    parameters: tuple[str, ...] = ()
    #: objects its definition reads directly
    reads: tuple[str, ...] = ()
    #: tables that feed it, directly or through other views and macros
    tables: tuple[str, ...] = ()
    #: objects whose definitions read it
    used_by: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def anchor(self) -> str:
        return self.qualified.replace(".", "-").replace("_", "-")


@dataclass(frozen=True)
class Dictionary:
    """The whole warehouse as its catalogue describes it."""

    schemas: tuple[tuple[str, str], ...]
    objects: tuple[ObjectDoc, ...] = field(default=())

    def in_schema(self, schema: str) -> list[ObjectDoc]:
        return [o for o in self.objects if o.schema == schema]


def _references(definition: str | None, known: set[str], own: str) -> tuple[str, ...]:
    if not definition:
        return ()
    found = {f"{s}.{n}" for s, n in _REFERENCE.findall(definition)}
    return tuple(sorted((found & known) - {own}))


def _closure(start: Iterable[str], reads: Mapping[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(reads.get(name, ()))
    return seen


def describe(con: duckdb.DuckDBPyConnection) -> Dictionary:
    """The catalogue's schemas, objects and columns with their comments and lineage."""
    rows = sql.query_rows(con, "dictionary/select_objects")
    known = {f"{s}.{n}" for s, n, *_ in rows}
    kinds = {f"{s}.{n}": k for s, n, k, *_ in rows}
    reads = {f"{s}.{n}": _references(d, known, f"{s}.{n}") for s, n, _k, d, _c in rows}
    columns: dict[str, list[ColumnDoc]] = {}
    for schema, name, column, data_type, comment in sql.query_rows(con, "dictionary/select_columns"):
        columns.setdefault(f"{schema}.{name}", []).append(ColumnDoc(column, data_type, comment or ""))
    parameters = {
        f"{s}.{n}": tuple(p) for s, n, p in sql.query_rows(con, "dictionary/select_macro_parameters")
    }
    objects = []
    for schema, name, kind, _definition, comment in rows:
        qualified = f"{schema}.{name}"
        upstream = _closure(reads[qualified], reads)
        objects.append(
            ObjectDoc(
                schema=schema,
                name=name,
                kind=kind,
                description=comment or "",
                columns=tuple(columns.get(qualified, ())),
                parameters=parameters.get(qualified, ()),
                reads=reads[qualified],
                tables=tuple(sorted(o for o in upstream if kinds[o] == "table")),
                used_by=tuple(sorted(o for o, r in reads.items() if qualified in r)),
            )
        )
    schemas = tuple((s, d or "") for s, d in sql.query_rows(con, "dictionary/select_schemas"))
    return Dictionary(schemas, tuple(objects))


def undescribed(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every schema, object and column of the warehouse without a description (empty when complete)."""
    found = describe(con)
    missing = [f"schema {s}" for s, d in found.schemas if not d]
    for obj in found.objects:
        if not obj.description:
            missing.append(f"{obj.kind} {obj.qualified}")
        missing += [f"column {obj.qualified}.{c.name}" for c in obj.columns if not c.description]
    return missing


def unknown_entries(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Entries of ``sql/dictionary.yaml`` that name nothing in the warehouse (stale descriptions)."""
    source = load_source()
    found = describe(con)
    present = {o.qualified: {c.name for c in o.columns} for o in found.objects}
    all_columns = set().union(*present.values()) if present else set()
    stale = [f"schemas.{s}" for s in source.schemas if s not in dict(found.schemas)]
    stale += [f"columns.{c}" for c in source.columns if c not in all_columns]
    for name, (_text, own) in source.objects.items():
        if name not in present:
            stale.append(f"objects.{name}")
            continue
        stale += [f"objects.{name}.columns.{c}" for c in own if c not in present[name]]
    return stale


# --- rendering -------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Text safe in Markdown: ``<name>`` would be read as an HTML tag, ``|`` as a table cell border."""
    return text.replace("<", "\\<").replace("|", "\\|")


def to_markdown(dictionary: Dictionary) -> str:
    """The generated block of ``docs/data_contract.md`` section 4 (markers included)."""
    lines = [BEGIN_MARKER, "", "Schemas:", ""]
    lines += [f"- `{schema}`: {_md(text)}" for schema, text in dictionary.schemas]
    for schema, _text in dictionary.schemas:
        for obj in dictionary.in_schema(schema):
            title = (
                f"`{obj.qualified}({', '.join(obj.parameters)})`" if obj.parameters else f"`{obj.qualified}`"
            )
            lines += ["", f"#### {title} ({obj.kind})", "", _md(obj.description)]
            if obj.tables and obj.kind != "table":
                lines += ["", "Fed by: " + ", ".join(f"`{t}`" for t in obj.tables) + "."]
            if obj.columns:
                lines += ["", "| column | type | description |", "|---|---|---|"]
                lines += [f"| `{c.name}` | {c.data_type} | {_md(c.description)} |" for c in obj.columns]
    return "\n".join([*lines, "", END_MARKER])


def update_contract(path: str | Path, dictionary: Dictionary) -> bool:
    """Replace the generated block of the contract at ``path``; True when the file changed."""
    target = Path(path)
    text = target.read_text(encoding="utf-8")
    if BEGIN_MARKER not in text or END_MARKER not in text:
        raise DictionaryError(f"{target}: no generated block ({BEGIN_MARKER} ... {END_MARKER})")
    head, rest = text.split(BEGIN_MARKER, 1)
    _old, tail = rest.split(END_MARKER, 1)
    updated = head + to_markdown(dictionary) + tail
    if updated == text:
        return False
    target.write_text(updated, encoding="utf-8")
    return True


def contract_block(path: str | Path) -> str:
    """The generated block currently in the contract at ``path`` (markers included)."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if start < 0 or end < 0:
        raise DictionaryError(f"{path}: no generated block ({BEGIN_MARKER} ... {END_MARKER})")
    return text[start : end + len(END_MARKER)]


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cohortpool.warehouse", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(dictionary: Dictionary) -> str:
    """The data dictionary as one self-contained HTML page (inline CSS, no script, no external link)."""
    return _environment().get_template("dictionary.html.j2").render(dictionary=dictionary)


def write_dictionary_page(db_path: str | Path, path: str | Path) -> Path:
    """Write the data dictionary page of the warehouse at ``db_path`` (opened read-only) to ``path``;
    e.g. into a report folder, whose page links ``dictionary.html`` when it is there."""
    con = open_reader(db_path)
    try:
        return write_dictionary_html(con, path)
    finally:
        con.close()


def write_dictionary_html(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """Write the data dictionary page of the warehouse behind ``con`` to ``path`` (replaced atomically).

    The page depends only on the schema (no row counts, no time), so the same schema gives the same bytes.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(render_html(describe(con)), encoding="utf-8")
    partial.replace(target)
    return target
