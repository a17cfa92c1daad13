"""Every notebook in notebooks/ runs top to bottom against a materialized graph."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ..conftest import PROJECT_ROOT
from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "notebook", sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name
)
def test_notebook_runs(
    notebook: Path, graph: MaterializedGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ASSETS_STATE_DIR", str(graph.state))
    document = nbformat.read(notebook, as_version=4)
    NotebookClient(document, timeout=120, kernel_name="python3").execute(
        cwd=str(PROJECT_ROOT / "notebooks")
    )
    errors = [
        output
        for cell in document.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
