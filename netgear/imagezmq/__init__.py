"""The imagezmq-compatible API: ``ImageSender`` and ``ImageHub`` (``api.py``) over the
imagezmq 1.2 wire format (``wire.py``, the only module here that imports zmq)."""

from .api import ImageHub, ImageSender

__all__ = ["ImageHub", "ImageSender"]
