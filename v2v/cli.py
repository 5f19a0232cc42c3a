"""The `v2v` command.

Subcommands are registered by modules listed in :data:`COMMAND_MODULES`. Each module defines
``register(cli: CLI)`` and keeps heavy imports (models, torch.nn) inside its handlers so that
`v2v --help` stays fast. Handlers take the parsed ``argparse.Namespace`` and return an exit
status (0 on success).

Grouped commands (``convert``, ``parity``, ``generate``, ``pose``, ``data``, ``bench``) take a
second word; systems add themselves with :meth:`CLI.group_command`, e.g.
``cli.group_command("parity", "fomm", help=...)``.

Errors: a :class:`v2v.errors.V2VError` prints ``error: <message>`` as one line on stderr and
exits 2; the traceback is shown only with ``-v``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from v2v.errors import V2VError

COMMAND_MODULES = [
    "v2v.commands.info",
    "v2v.commands.data",
    "v2v.commands.train",
    "v2v.commands.fomm",
    "v2v.commands.vid2vid",
    "v2v.commands.dance",
    "v2v.commands.eval",
    "v2v.commands.demo",
]

GROUPS = {
    "convert": "convert an official checkpoint into v2v's safetensors format",
    "parity": "check v2v against an official fixture directory (cases.npz)",
    "generate": "generate a video with a trained system",
    "pose": "pose pipeline stages: extract, normalize, render",
    "data": "datasets: synthesize, inspect",
    "bench": "run a benchmark",
}


class CLI:
    """Registry handed to each command module's ``register``."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser
        self.sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def command(self, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        p = self.sub.add_parser(name, help=help, description=help, **kwargs)
        _add_global_options(p, as_default=False)
        return p

    def group_command(self, group: str, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        if group not in self._groups:
            gp = self.sub.add_parser(group, help=GROUPS.get(group, group), description=GROUPS.get(group, group))
            gp.set_defaults(func=_group_help(gp))
            self._groups[group] = gp.add_subparsers(dest=f"{group}_command", metavar="SYSTEM_OR_STAGE")
        p = self._groups[group].add_parser(name, help=help, description=help, **kwargs)
        _add_global_options(p, as_default=False)
        return p


def _group_help(parser):
    def run(args):
        parser.print_help()
        return 2

    return run


def _add_global_options(p: argparse.ArgumentParser, as_default: bool = True) -> None:
    # Global options are accepted before and after the subcommand; SUPPRESS keeps the
    # top-level value unless the subcommand level gives one.
    d = (lambda v: v) if as_default else (lambda v: argparse.SUPPRESS)
    p.add_argument("--device", default=d("auto"), help="cpu, cuda, cuda:N or auto (default: cuda if present)")
    p.add_argument("--seed", type=int, default=d(0), help="random seed (default 0)")
    p.add_argument("-v", "--verbose", action="count", default=d(0), help="more logging; tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v2v",
        description="v2v: video-to-video synthesis toolkit (vid2vid, FOMM, Everybody Dance Now, ...)",
    )
    _add_global_options(parser)
    cli = CLI(parser)
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:  # not written yet
                continue
            raise
        mod.register(cli)
    _register_systems(cli)
    return parser


def _register_systems(cli: CLI) -> None:
    """Each registered system's own verbs (``commands=``), then generic ``parity <system>`` for
    systems with a compat module whose commands did not add one."""
    from v2v.registry import all_systems

    done = set(COMMAND_MODULES)
    for spec in all_systems().values():
        if spec.commands and spec.commands not in done:
            importlib.import_module(spec.commands).register(cli)
            done.add(spec.commands)
    have = set(cli._groups["parity"].choices) if "parity" in cli._groups else set()
    for name, spec in all_systems().items():
        if spec.compat and name not in have and name.replace("-", "_") not in have:
            aliases = [name.replace("-", "_")] if "-" in name else []
            p = cli.group_command("parity", name, help=f"run every case of an official {name} fixture folder",
                                  aliases=aliases)
            p.add_argument("fixture_dir", help="fixture folder (official checkpoint, options, cases)")
            p.set_defaults(func=_generic_parity, system=name)


def _generic_parity(args) -> int:
    from v2v.registry import get_spec

    report = get_spec(args.system).compat_module().run_parity(args.fixture_dir)
    report.print()
    return report.exit_code


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else (logging.INFO if args.verbose else logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
        return int(rc or 0)
    except V2VError as exc:
        if args.verbose:
            raise
        msg = " ".join(str(exc).splitlines())
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
