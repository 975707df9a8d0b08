"""Video codecs (H.264, HEVC) through PyAV: the engine of the ``video_codec`` option.

Wired into :class:`~netgear.NetGear` by the ``video_codec`` option (:mod:`netgear.modes.video`,
:mod:`netgear.codecs.video`).
PyAV is optional (``pip install 'netgear[video]'``); importing this package does not need
it, constructing an encoder or decoder does.
"""

from .decoder import VideoDecoder
from .encoder import VideoEncoder
from .meta import CODECS, VideoMeta, VideoPacket

__all__ = ["CODECS", "VideoDecoder", "VideoEncoder", "VideoMeta", "VideoPacket"]
