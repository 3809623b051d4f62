"""``spine-cds replay --png/--html --parquet``: the chart, the page and the Parquet rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.impact.run import ROWS_CSV, ROWS_PARQUET
from tests.impact.helpers import write_population

pytest.importorskip("matplotlib")


def test_png_html_and_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    export = write_population(tmp_path / "export", 150)
    png, html = tmp_path / "replay.png", tmp_path / "replay.html"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--patient-id",
            "plain",
            "--no-progress",
            "--parquet",
            "--png",
            str(png),
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "Advise-against orders:" in page
    with (tmp_path / "out" / ROWS_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = pq.read_table(tmp_path / "out" / ROWS_PARQUET)
    assert table.num_rows == len(rows) > 0
    assert table.column("decision").to_pylist() == [r["decision"] for r in rows]
    assert table.schema.field("study_performed_after").type == "bool"
