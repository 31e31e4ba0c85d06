"""Figures: inline SVG, byte-identical for the same data, hidden rates never drawn as bars."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

from cohortpool.report.figures import detection_svg, figure_svg, forest_svg
from cohortpool.report.release import release
from report_results import detection, forest

SVG = "{http://www.w3.org/2000/svg}"


def test_same_data_gives_byte_identical_svg() -> None:
    assert forest_svg(forest()) == forest_svg(forest())
    assert detection_svg(detection()) == detection_svg(detection())


def test_svg_is_inline_ready_without_prologue_date_or_embedded_fonts() -> None:
    svg = forest_svg(forest())
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg and "DOCTYPE" not in svg
    assert "<dc:date>" not in svg
    ET.fromstring(svg)  # well-formed
    # svg.fonttype none: labels are real text a reader (and a screen reader) can select
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert any(t and "site01" in t for t in texts)


def test_two_figures_of_one_page_do_not_share_element_ids() -> None:
    first = forest_svg(forest())
    second = forest_svg(replace(forest(), name="forest_other"))
    ids = lambda s: set(re.findall(r'id="([^"]+)"', s))  # noqa: E731
    assert ids(first) and not (ids(first) & ids(second))
    # every internal reference still points at an element of the same figure
    for svg in (first, second):
        refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
        assert refs and refs <= ids(svg)


def test_changed_estimate_changes_the_figure() -> None:
    moved = forest()
    frame = moved.frame.copy()
    frame.loc[0, "estimate"] = 3.0
    assert forest_svg(replace(moved, frame=frame)) != forest_svg(forest())


def test_suppressed_rate_is_drawn_as_an_empty_outline_with_its_mark() -> None:
    released = release([detection()], threshold=5)[0]
    site = released.frame[released.frame["site_id"] == "site01"].copy()
    svg = detection_svg(replace(released, frame=site))
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "<5" in texts
    full = detection_svg(
        replace(detection(), frame=detection().frame[detection().frame["site_id"] == "site01"])
    )
    assert "<5" not in [t.text for t in ET.fromstring(full).iter(f"{SVG}text")]


def test_a_result_without_rows_has_no_figure_and_a_full_one_has() -> None:
    empty = replace(detection(), frame=detection().frame.iloc[0:0])
    assert figure_svg(empty) is None  # its notes say why; a chart of nothing would crash matplotlib
    assert figure_svg(detection()) is not None and figure_svg(forest()) is not None
