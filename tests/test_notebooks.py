"""Every notebook runs top to bottom without error, quickly, and is kept without outputs."""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
TIME_LIMIT_S = 120


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_compare_programs", "03_staffing_sweep",
                                           "04_beds_and_aftercare", "05_from_your_own_data"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=TIME_LIMIT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    took = time.perf_counter() - t0
    assert took < TIME_LIMIT_S, f"{path.name} took {took:.0f} s"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the last cell draws a chart or a table: something was shown
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if o.output_type in ("display_data", "execute_result")]
    assert any("image/png" in o.get("data", {}) for o in shown), f"{path.name} drew no chart"
