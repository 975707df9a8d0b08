"""The architecture's rules that a grep can check: where zmq is imported, the pattern policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import zmq

import netgear
from netgear.link import NOBLOCK, PATTERN_POLICIES, pattern_policy

PACKAGE = Path(netgear.__file__).parent
# the link, the security package and the imagezmq wire module may speak ZeroMQ
ALLOWED = ("link/", "security/", "imagezmq/wire.py")


def test_zmq_is_imported_only_by_the_link_security_and_imagezmq_wire() -> None:
    offenders = [
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if re.search(r"^\s*(import zmq|from zmq\b)", path.read_text(), re.M)
        and not str(path.relative_to(PACKAGE)).startswith(ALLOWED)
    ]
    assert offenders == []


def test_noblock_flag_value_is_zmqs() -> None:
    assert NOBLOCK == zmq.NOBLOCK


@pytest.mark.parametrize("number", [0, 1, 2])
def test_pattern_policy_socket_types_exist(number: int) -> None:
    policy = pattern_policy(number)
    assert policy.number == number
    for name in (policy.sender_socket, policy.receiver_socket):
        assert isinstance(getattr(zmq, name), int)


def test_pattern_policies_say_what_the_core_relies_on() -> None:
    pair, reqrep, pubsub = (PATTERN_POLICIES[n] for n in (0, 1, 2))
    assert reqrep.replies and not pair.replies and not pubsub.replies
    assert pair.acknowledges_end and not reqrep.acknowledges_end
    assert pubsub.fans_out and not pubsub.two_way and pair.two_way and reqrep.two_way
    assert not pair.lingers_on_close and reqrep.lingers_on_close and pubsub.lingers_on_close
    assert pair.connects_at_first_frame and pubsub.connects_at_first_frame
    assert not reqrep.connects_at_first_frame
    assert reqrep.multi_peer and pubsub.multi_peer and not pair.multi_peer
    assert not reqrep.drops_when_busy and not reqrep.conflates


def test_no_pattern_number_comparisons_left_in_the_core() -> None:
    pattern_check = re.compile(r"pattern\s*(==|!=|not in|in)\s*[\d(]")
    offenders = [
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if not str(path.relative_to(PACKAGE)).startswith(("cli/", "web/", "record/"))
        and pattern_check.search(path.read_text())
    ]
    assert offenders == []
