"""Pictures of what the models do.

Plots (each returns a matplotlib Figure; pass ``ax``/``fig`` to draw into your own):
:func:`sample_grid`, :func:`training_curves`, :func:`density_1d`, :func:`joint_2d`,
:func:`receptive_field_plot`. Analytic receptive fields (no gradients):
:func:`dilated_stack_receptive_field`, :func:`masked_conv_stack_receptive_field`.

Widgets (ipywidgets core controls + matplotlib, so they run in Colab): :class:`InverseCDFWidget`,
:class:`HistogramBinsWidget`, :class:`MADEWidget`, :class:`WaveNetWidget`,
:class:`ReceptiveFieldExplorer`, :class:`SamplingStepper`. ``display(w)`` shows one; every
widget has ``w.figure()`` and a static twin ``Widget.static(...)`` for exported pages.
"""
from arlab.receptive import (dilated_stack_offsets, dilated_stack_receptive_field,
                             dilated_stack_tree, masked_conv_stack_receptive_field)
from arlab.viz.explorer import EXPLORER_MODELS, ReceptiveFieldExplorer, explorer_model
from arlab.viz.networks import (DILATION_PATTERNS, MADEWidget, WaveNetWidget, made_dependence,
                                made_network, made_paths, pattern_dilations)
from arlab.viz.fields import (CATEGORIES, allowed_pixels, draw_receptive_map,
                              pixel_receptive_map, receptive_categories, receptive_field_plot)
from arlab.viz.plots import (density_1d, joint_2d, model_joint_2d, model_probs_1d, new_figure,
                             sample_grid, training_curves)
from arlab.viz.stepper import SampleTrajectory, SamplingStepper
from arlab.viz.widgets import (FigureWidget, HistogramBinsWidget, InverseCDFWidget,
                               binned_histogram_probs, nll_nats_per_dim)

__all__ = [
    "sample_grid", "training_curves", "density_1d", "joint_2d", "receptive_field_plot",
    "model_probs_1d", "model_joint_2d", "pixel_receptive_map", "allowed_pixels",
    "receptive_categories", "draw_receptive_map", "CATEGORIES", "new_figure",
    "dilated_stack_offsets", "dilated_stack_receptive_field", "dilated_stack_tree",
    "masked_conv_stack_receptive_field",
    "FigureWidget", "InverseCDFWidget", "HistogramBinsWidget", "binned_histogram_probs",
    "nll_nats_per_dim", "MADEWidget", "made_network", "made_dependence", "made_paths",
    "WaveNetWidget", "DILATION_PATTERNS", "pattern_dilations", "ReceptiveFieldExplorer",
    "EXPLORER_MODELS", "explorer_model", "SamplingStepper", "SampleTrajectory",
]
