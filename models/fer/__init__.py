"""FER refiners (paper, section 3.2): face crops -> 7 expression probabilities, built by name.

>>> from models.fer import create_refiner, list_refiners
>>> list_refiners()
['mini-xception', 'onnx', 'resnet50']
"""

from models.fer import mini_xception, onnx_model, resnet50  # noqa: F401  (registers the families)
from models.fer.refiner import InputSpec, Refiner
from models.fer.registry import create_refiner, list_refiners, register_refiner

__all__ = ["InputSpec", "Refiner", "create_refiner", "list_refiners", "register_refiner"]
