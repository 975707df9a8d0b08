"""``netgear keys``: create and inspect CurveZMQ key folders for secure mode."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import CliError, say, warn

__all__ = ["add_parser", "run"]

HELP = "create or show CurveZMQ keys for secure mode"
DESCRIPTION = """\
Secure mode (secure_mode=1 or 2) needs a key folder on each machine. `generate`
creates DIR with a server (receiver) and a client (sender) keypair; files that
already exist are kept unless --overwrite. `show` lists what DIR holds and any
problem with it; `allow` lets a sender into an IronHouse receiver. DIR defaults
to ~/.netgear/keys. See docs/modes/secure.md.
"""
EPILOG = """\
examples:
  netgear keys generate ./keys
  netgear keys show ./keys
  netgear keys allow ./keys /mnt/camera1/keys/public/client.key
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("keys", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="create the key folder and any missing keypair",
                         description="Create DIR (default ~/.netgear/keys) with a server and "
                         "a client keypair; existing keys are kept unless --overwrite.")
    gen.add_argument("dir", nargs="?", default=None, metavar="DIR",
                     help="key folder (default ~/.netgear/keys)")
    gen.add_argument("--overwrite", action="store_true",
                     help="replace existing keypairs (peers holding the old public keys "
                     "will no longer connect)")
    gen.set_defaults(run=run, cli_parser=gen)
    show = sub.add_parser("show", help="list the keys in a folder and report problems",
                          description="List DIR's keypairs, public keys and allowed "
                          "senders; exit 1 when something is wrong with them.")
    show.add_argument("dir", nargs="?", default=None, metavar="DIR",
                      help="key folder (default ~/.netgear/keys)")
    show.set_defaults(run=run, cli_parser=show)
    allow = sub.add_parser("allow", help="let a sender in (IronHouse): copy its public key "
                           "into DIR/allowed/",
                           description="Copy a sender's public/client.key into the "
                           "receiver's DIR/allowed/ so secure_mode=2 lets it in.")
    allow.add_argument("dir", metavar="DIR", help="the receiver's key folder")
    allow.add_argument("public_key", metavar="KEYFILE",
                       help="the sender's public key file (its DIR/public/client.key)")
    allow.add_argument("--name", default=None,
                       help="file name in allowed/ (default: derived from the key)")
    allow.set_defaults(run=run, cli_parser=allow)


def run(args: argparse.Namespace) -> int:
    from ..security import allow_client, default_key_dir, generate_keys, list_keys

    folder = Path(args.dir).expanduser() if args.dir else default_key_dir()
    if args.action == "generate":
        if folder.exists() and not folder.is_dir():
            raise CliError(f"{folder} exists and is not a folder")
        generate_keys(folder, overwrite=args.overwrite)
        say(f"keys ready in {folder}")
        return _show(list_keys(folder), brief=True)
    if args.action == "allow":
        if not Path(args.public_key).is_file():
            raise CliError(f"no key file at {args.public_key}")
        try:
            target = allow_client(folder, args.public_key, name=args.name)
        except ValueError as exc:  # a bad --name
            raise CliError(str(exc)) from exc
        say(f"allowed: {target}")
        return 0
    if not folder.is_dir():
        raise CliError(f"no key folder at {folder}; create one with: netgear keys generate "
                       f"{args.dir or ''}".rstrip())
    return _show(list_keys(folder), brief=False)


def _show(info: Any, brief: bool) -> int:
    from ..security.keys import fingerprint
    from ..security.perms import folder_problems

    say(f"key folder: {info.root}")
    for pair in info.pairs:
        key: str | None = pair.public_key
        state = "secret key present" if pair.has_secret else "no secret key"
        if key is None:
            say(f"  {pair.name}: no public key ({state})")
            continue
        say(f"  {pair.name}: {key}  fingerprint {fingerprint(key.encode())}  ({state})")
        if not brief:
            say(f"      public: {pair.public_file}")
            if pair.has_secret:
                say(f"      secret: {pair.secret_file}")
    if info.allowed:
        say(f"  allowed senders ({len(info.allowed)}):")
        for allowed in info.allowed:
            say(f"      {allowed.file.name}: {allowed.public_key or 'unreadable'}")
    elif not brief:
        say("  allowed senders: none")
    for problem in info.problems:
        say(f"  problem: {problem}")
    if folder_problems(info.root):
        warn(f"WARNING: {info.root} could hold keys planted by another user; secure mode "
             "refuses it until the problems above are fixed")
    return 1 if info.problems else 0
