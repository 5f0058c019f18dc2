"""The prototyping notebook runs top to bottom on a small sample of the real data."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "model_prototyping.ipynb"
SAMPLE = {"SAMPLE_ROWS": "60_000", "N_ESTIMATORS": "10"}


def with_parameters(nb: nbformat.NotebookNode, values: dict[str, str]) -> None:
    """Overwrite assignments in the cell tagged `parameters`, papermill style."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in values.items():
        cell.source, count = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", cell.source)
        assert count == 1, f"parameter {name} not found"


def test_notebook_runs_top_to_bottom_on_a_sample(real_data: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with_parameters(nb, {**SAMPLE, "DATA": repr(str(real_data))})
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    printed = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    found = re.search(r"test PR-AUC (\d\.\d+)", printed)
    assert found and 0.0 < float(found.group(1)) <= 1.0, printed[-2000:]
    assert "60,000 rows" in printed
