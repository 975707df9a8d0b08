"""Frame sources: cameras, files, URLs, Raspberry Pi camera modules and a synthetic pattern."""

from .camgear import CamGear
from .pigear import PiGear
from .testpattern import TestPatternGear
from .videogear import VideoGear

__all__ = ["CamGear", "PiGear", "TestPatternGear", "VideoGear"]
