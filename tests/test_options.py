"""Every bad constructor argument or option fails up front, naming the key."""

from __future__ import annotations

import pytest
import zmq

from netgear import NetGear, OptionError
from netgear.core.options import CORE_OPTIONS
from netgear.modes import MODES


def _opens_nothing(**kwargs):
    """Build with bad input; the error must come before any socket (no bind happened)."""
    with pytest.raises(OptionError) as info:
        NetGear(**kwargs)
    return info.value


@pytest.mark.parametrize(
    ("kwargs", "key", "fragment"),
    [
        ({"jpeg_compresion": True}, "jpeg_compresion", "unknown option"),
        ({"request_timeot": 1}, "request_timeot", "did you mean 'request_timeout'"),
        ({"max_retries": "3"}, "max_retries", "must be int"),
        ({"max_retries": True}, "max_retries", "must be int"),
        ({"max_retries": -1}, "max_retries", "between 0 and 1000"),
        ({"request_timeout": 0}, "request_timeout", "between"),
        ({"request_timeout": float("nan")}, "request_timeout", "finite"),
        ({"request_timeout": "4"}, "request_timeout", "must be float"),
        ({"copy": 1}, "copy", "must be bool"),
        ({"track": "yes"}, "track", "must be bool"),
        ({"flag": 2}, "flag", "0 or zmq.NOBLOCK"),
        ({"flag": 1, "pattern": 1}, "flag", "REQ/REP"),
        ({"subscriber_timeout": 5, "pattern": 0}, "subscriber_timeout", "pattern 2"),
        ({"subscriber_timeout": -1, "pattern": 2}, "subscriber_timeout", "between"),
        ({"receive_timeout": "soon"}, "receive_timeout", "must be float"),
        ({"force_terminate": 1}, "force_terminate", "must be bool"),
        ({"pattern": 3}, "pattern", "must be one of"),
        ({"pattern": True}, "pattern", "must be one of"),
        ({"pattern": "1"}, "pattern", "must be one of"),
        ({"protocol": "udp"}, "protocol", "RADIO/DISH"),
        ({"protocol": "upd"}, "protocol", "typo"),
        ({"protocol": "pgm"}, "protocol", "OpenPGM"),
        ({"protocol": "http"}, "protocol", "must be one of"),
        ({"protocol": 6}, "protocol", "string"),
        ({"receive_mode": "yes"}, "receive_mode", "True or False"),
        ({"logging": 1}, "logging", "True or False"),
        ({"port": 0}, "port", "1 to 65535"),
        ({"port": 70000}, "port", "1 to 65535"),
        ({"port": "55a5"}, "port", "1 to 65535"),
        ({"port": 5.5}, "port", "int or a string"),
        ({"port": True}, "port", "int or a string"),
        ({"port": []}, "port", "must not be empty"),
        ({"port": [5566, 5567]}, "port", "multiclient_mode"),
        ({"port": [5566, 5567], "receive_mode": True}, "port", "multiserver_mode"),
        ({"address": ""}, "address", "non-empty"),
        ({"address": 42}, "address", "non-empty"),
        ({"address": "tcp://1.2.3.4"}, "address", "scheme"),
    ],
)
def test_bad_input_names_the_key(kwargs, key, fragment):
    error = _opens_nothing(**kwargs)
    assert error.key == key
    assert fragment in str(error)
    assert isinstance(error, ValueError)


def test_error_comes_before_any_socket(port):
    # A receiver with a bad option must not have bound the port: a good one can bind it now.
    with pytest.raises(OptionError):
        NetGear(address="127.0.0.1", port=port, receive_mode=True, max_retries="x")
    with NetGear(address="127.0.0.1", port=port, receive_mode=True) as good:
        assert not good.closed


def test_unknown_key_lists_known_options():
    error = _opens_nothing(bogus=1)
    for spec in CORE_OPTIONS:
        assert spec.key in str(error)


def test_every_option_key_is_unique_across_core_and_modes():
    keys = [o.key for o in CORE_OPTIONS] + [o.key for m in MODES for o in m.options]
    assert len(keys) == len(set(keys))


def test_accepted_values_are_normalised(port):
    with NetGear(address="127.0.0.1", port=str(port), request_timeout=1, pattern=1,
                 flag=0, copy=True, track=False, max_retries=0, force_terminate=True) as gear:
        assert gear.settings.options["request_timeout"] == 1.0
        assert isinstance(gear.settings.options["request_timeout"], float)
        assert gear.settings.port == str(port)
    with NetGear(address="127.0.0.1", port=port, pattern=2, flag=zmq.NOBLOCK) as gear:
        assert gear.settings.options["flag"] == zmq.NOBLOCK


def test_ipv6_literal_is_bracketed(port):
    with NetGear(address="::1", port=port, receive_mode=True) as gear:
        assert gear.settings.endpoint(str(port)) == f"tcp://[::1]:{port}"
