"""Face detectors (paper, section 3.2: the face rules of candidate generation), built by name.

>>> from models.detectors import create_detector, list_detectors
>>> list_detectors()
['insightface-pack', 'scrfd']
"""

from models.detectors import insightface_scrfd  # noqa: F401  (registers the family)
from models.detectors.base import FaceDetections, FaceDetector
from models.detectors.registry import create_detector, list_detectors, register_detector

__all__ = ["FaceDetections", "FaceDetector", "create_detector", "list_detectors", "register_detector"]
