"""Frame sources: cameras, files, URLs, Raspberry Pi camera modules and a synthetic pattern."""

from netgear.gears.camgear import CamGear
from netgear.gears.pigear import PiGear
from netgear.gears.testpattern import TestPatternGear
from netgear.gears.videogear import VideoGear

__all__ = ["CamGear", "PiGear", "TestPatternGear", "VideoGear"]
