"""The figure notebooks in notebooks/: stored clean, and each runs top to bottom in QUICK mode.

Each notebook is copied into ``tmp_path``, a cell that sets ``QUICK = True`` and ``OUT``
(under ``tmp_path``) is injected right after its "parameters" cell (as papermill does),
and it is executed with nbclient on the ``python3`` kernel. The test then checks that the
figures the notebook promises exist and are non-empty. The five executions take about
2 minutes on a 2-core CPU (most of it TensorFlow start-up and the quick sweeps).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"

#: Figure files each notebook writes, relative to its OUT folder.
EXPECTED_FIGURES = {
    "01_synthetic_propagation.ipynb": [
        "fig01_synthetic_datasets.png",
        "fig02_propagation_residual_h0.1.png",
        "fig03_propagation_residual_h1.png",
        "fig04_propagation_batchnorm_h0.1.png",
        "fig05_propagation_batchnorm_h1.png",
        "fig06_propagation_shrinkage_h0.1.png",
        "fig07_propagation_shrinkage_h1.png",
        "propagation_residual_h0.1.gif",
        "spectra_residual_h1.png",
        "spectra_shrinkage_h1.png",
        "fig08_accuracy_vs_h_synthetic.png",
    ],
    "02_uci_sweeps.ipynb": [
        *(f"{name}/accuracy_vs_h.png" for name in ("wine", "abalone", "absenteeism", "autism", "adult")),
        "wine/report.html",
        "wine/report.md",
    ],
    "03_bitcoin_over_time.ipynb": [
        "sweep_bitcoin/accuracy_vs_h.png",
        "sweep_bitcoin/accuracy_over_time.png",
    ],
    "04_zero_stability.ipynb": [
        "characteristic_roots.png",
        "zeros_lambda_region.png",
        "lm_k_region.png",
        "sweep_wine_noise/noise_robustness.png",
    ],
    "05_beyond.ipynb": [  # QUICK runs its sweeps into folders ending in -quick
        "sweep_wine_learned_h-quick/learned_h.png",
        "sweep_wine_levels-quick/accuracy_by_level.png",
        "sweep_wine_noise-quick/stability_vs_accuracy.png",
        "sweep_wine_noise-quick/noise_robustness.png",
        "sweep_bitcoin-quick/accuracy_over_time.png",
        "sweep_bitcoin-quick/stability_vs_accuracy.png",
    ],
}
NOTEBOOKS = sorted(EXPECTED_FIGURES)


def _parameters_index(nb) -> int:
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise AssertionError("no cell tagged 'parameters'")


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_clean(name):
    """Saved without outputs or execution counts, on the python3 kernel, QUICK by default."""
    path = NOTEBOOKS_DIR / name
    text = path.read_text(encoding="utf-8")
    assert "output_type" not in text, f"{name} is stored with outputs; clear them before committing"
    nb = json.loads(text)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] is None and cell["outputs"] == [] for cell in code)
    assert nb["cells"][0]["cell_type"] == "markdown"
    params = [cell for cell in code if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    source = "".join(params[0]["source"])
    assert "QUICK = True" in source and 'OUT = Path("notebook_outputs/' in source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_quick(name, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    copy = tmp_path / name
    shutil.copy(NOTEBOOKS_DIR / name, copy)
    nb = nbformat.read(copy, as_version=4)
    out = tmp_path / "outputs" / Path(name).stem
    injected = nbformat.v4.new_code_cell(
        f"QUICK = True\nOUT = Path({str(out)!r})", metadata={"tags": ["injected-parameters"]}
    )
    nb.cells.insert(_parameters_index(nb) + 1, injected)

    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    missing = [f for f in EXPECTED_FIGURES[name] if not (out / f).is_file() or (out / f).stat().st_size == 0]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not missing, f"{name} did not write {missing}; it wrote {written}"
    shown = sum(
        1
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if any(kind in output.get("data", {}) for kind in ("image/png", "image/gif"))
    )
    figures = [f for f in EXPECTED_FIGURES[name] if f.endswith((".png", ".gif"))]
    assert shown >= len(figures), f"{name} displayed {shown} images, expected one per figure: {figures}"
