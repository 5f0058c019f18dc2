"""The prototyping notebook runs top to bottom on a small sample of the real data."""

import re
import sys
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "model_prototyping.ipynb"
# 60,000 rows is the smallest prefix by time whose test slice still holds a dozen frauds
# (40,000 leaves 2); 10 trees keep the search to about half a minute.
SAMPLE = {"SAMPLE_ROWS": "60_000", "N_ESTIMATORS": "10"}
CELL_TIMEOUT = 300
PLOTS = 5


def with_parameters(nb: nbformat.NotebookNode, values: dict[str, str]) -> None:
    """Overwrite assignments in the cell tagged `parameters`, papermill style."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in values.items():
        cell.source, count = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", cell.source)
        assert count == 1, f"parameter {name} not found"


def outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Every output of every code cell, in order."""
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def text_of(out: nbformat.NotebookNode) -> str:
    """What an output shows as text: printed streams and the plain-text form of results."""
    return str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))


def test_notebook_runs_top_to_bottom_on_a_sample(real_data: Path) -> None:
    """Executes an in-memory copy on 60,000 rows; the file on disk is never written."""
    spec = KernelSpecManager().get_kernel_spec("python3")
    # The kernel must be this interpreter (its `python` argv is replaced by sys.executable).
    assert Path(spec.resource_dir).is_relative_to(sys.prefix), spec.resource_dir
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with_parameters(nb, {**SAMPLE, "DATA": repr(str(real_data))})

    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()

    assert not [out for out in outputs(nb) if out.output_type == "error"]
    shown = "".join(text_of(out) for out in outputs(nb))
    assert "60,000 rows" in shown, shown[:2000]
    assert re.search(r"\d+ configurations x 10 trees", shown), shown[-4000:]
    assert re.search(r"production default: validation PR-AUC 0\.\d+", shown), shown[-4000:]
    found = re.search(r"test PR-AUC (\d\.\d+) next to the test fraud rate (\d\.\d+)%", shown)
    assert found, shown[-2000:]
    pr_auc, fraud_rate = float(found.group(1)), float(found.group(2)) / 100
    assert fraud_rate < pr_auc <= 1.0, "the model ranks frauds no better than chance"
    plots = [out for out in outputs(nb) if "image/png" in out.get("data", {})]
    assert len(plots) == PLOTS, f"{len(plots)} figures rendered, expected {PLOTS}"
