"""Secure mode helpers: CURVE key folders and the receiver's ZAP authenticator.

The public key-folder API (used by ``netgear keys ...`` and by applications):
:func:`generate_keys`, :func:`list_keys`, :func:`allow_client`, :func:`default_key_dir`.
"""

from __future__ import annotations

from .auth import ServerAuthenticator, require_curve
from .keys import (
    KeyFolder,
    allow_client,
    default_key_dir,
    generate_keys,
    load_allowed,
    load_keypair,
    load_public_key,
)
from .report import AllowedKey, KeyInfo, KeyringInfo, list_keys

__all__ = [
    "AllowedKey",
    "KeyFolder",
    "KeyInfo",
    "KeyringInfo",
    "ServerAuthenticator",
    "allow_client",
    "default_key_dir",
    "generate_keys",
    "list_keys",
    "load_allowed",
    "load_keypair",
    "load_public_key",
    "require_curve",
]
