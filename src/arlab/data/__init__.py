"""Every dataset of the course as integer levels with deterministic train/test splits.

=====================  ===============  ======  =========================================
loader                 data shape       levels  what
=====================  ===============  ======  =========================================
``toy_1d``             ``[N, 1]``       20/100  digitised Gaussian / mixture (``holes``)
``smiley_2d``          ``[N, 2]``       32      (row, column) pairs from a smiley picture
``shapes``             ``[N,1,20,20]``  2       six kinds of shape, labelled
``digits``             ``[N,1,8,8]``    2       sklearn's 8x8 digits, binarised
``mnist``              ``[N,1,28,28]``  2       real MNIST (shipped subset or full)
``color_mnist``        ``[N,3,28,28]``  4       MNIST painted in 2-bit colour
=====================  ===============  ======  =========================================
"""
from arlab.data.base import LevelData, data_dir
from arlab.data.images import color_mnist, digits, dynamic_binarize, mnist, mnist_grey
from arlab.data.shapes import SHAPE_CLASSES, shapes
from arlab.data.toy import smiley_2d, smiley_picture, toy_1d

__all__ = ["LevelData", "data_dir", "toy_1d", "smiley_2d", "smiley_picture", "shapes",
           "SHAPE_CLASSES", "digits", "mnist", "mnist_grey", "color_mnist", "dynamic_binarize"]
