"""The facade (``NetGear``) and its two halves, with what they share.

``netgear.py`` validates and composes; ``sender.py`` and ``receiver.py`` are the halves;
``wire.py`` the message format, ``settings.py``/``options.py``/``validation.py`` the
checked constructor arguments, ``inflight.py`` the send window, ``stats.py`` the counters.
Kept free of imports so that any part may import a core module without a cycle.
"""
