"""The walkthrough's widget cells, one small notebook each, called as the notebooks call them.

Each case is ``(name, setup, call)``: ``setup`` stands in for the notebook cells that build the
widget's inputs (untrained models, so a case runs in seconds), ``call`` is the widget cell as
the walkthrough writes it."""
from __future__ import annotations

_ONE_D = """\
import torch
from arlab.data import toy_1d
data = toy_1d("mixture")
d = data.levels
train, test = data.train[:, 0], data.test[:, 0]
p_sgd = torch.bincount(train, minlength=d).double() / len(train)
"""

CASES: list[tuple[str, str, str]] = [
    ("01_inverse_cdf", _ONE_D + "from arlab.viz import InverseCDFWidget",
     "widget = InverseCDFWidget(p_sgd, u=0.5)\nwidget.show()"),
    ("01_histogram_bins", _ONE_D + "from arlab.viz import HistogramBinsWidget",
     "widget = HistogramBinsWidget(train[:200], test, d, bins=100, alpha=0.5)\nwidget.show()"),
    ("05_made", "from arlab.viz import MADEWidget",
     'made_widget = MADEWidget(d=6, hidden="8,8", ordering="raster", seed=0, output=4)\n'
     "made_widget.show()"),
    ("05_made_stepper",
     "import copy\nfrom arlab.models import MADE\nfrom arlab.viz import SamplingStepper\n"
     'made = MADE((1, 28, 28), levels=2, hidden_sizes=(64,), ordering="even_odd")\nD = 784',
     "stepper = SamplingStepper(copy.deepcopy(made).cpu(), seed=0, step=D // 2 + D // 4)\n"
     "stepper.show()"),
    ("06_wavenet", "from arlab.viz import WaveNetWidget",
     'widget = WaveNetWidget(layers=4, pattern="1,2,4,...", kernel_size=2, length=40)\n'
     "widget.show()"),
    ("07_explorer_pixelcnn", "from arlab.viz import ReceptiveFieldExplorer",
     'explorer = ReceptiveFieldExplorer(model="pixelcnn", layers=3, kernel_size=5, '
     "pixel=(8, 5), image_size=12)\nexplorer.show()"),
    ("07_pixelcnn_stepper",
     "import copy\nfrom arlab.data import shapes\nfrom arlab.models import PixelCNN\n"
     "from arlab.viz import SamplingStepper\nshape_data = shapes(64, 16)\n"
     "pixelcnn_shapes = PixelCNN(shape_data.data_shape, 2, channels=16, layers=3)",
     "stepper = SamplingStepper(copy.deepcopy(pixelcnn_shapes).cpu(), seed=0, step=170)\n"
     "stepper.show()"),
    ("08_explorer_gated", "from arlab.viz import ReceptiveFieldExplorer",
     'explorer = ReceptiveFieldExplorer(model="gated_pixelcnn", layers=4, kernel_size=3, '
     "pixel=(8, 3), image_size=12)\nexplorer.show()"),
    ("09_explorer_magnitude",
     "from arlab.viz import ReceptiveFieldExplorer\nLAYERS, KERNEL, SIZE, PIXEL = 6, 3, 16, (13, 8)",
     'explorer = ReceptiveFieldExplorer(model="pixelcnn_skip", layers=LAYERS, kernel_size=KERNEL,'
     '\n    pixel=PIXEL, mode="magnitude", image_size=SIZE)\nexplorer.show()'),
    ("10_explorer_side_by_side", "from arlab.viz import ReceptiveFieldExplorer",
     'explorer = ReceptiveFieldExplorer(model="pixelsnail", layers=6, kernel_size=3, '
     'pixel=(13, 8),\n    mode="magnitude", side_by_side=True, image_size=16)\nexplorer.show()'),
]


def notebook(setup: str, call: str):
    """A two-cell notebook: the setup, then the widget cell (always the last cell)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(call)]
    return nb
