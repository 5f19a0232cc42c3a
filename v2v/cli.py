"""The `v2v` command, built from the modules of :mod:`v2v.commands` and the system registry.

No hand-kept list: the toolkit's own commands (``info``, ``data``, ``train``, ``eval``, ``demo``)
are the :mod:`v2v.commands` modules found with ``pkgutil``; each registered system adds its own
verbs through its ``commands=`` module (``animate``, ``generate <system>``, ``dance``, ...), and
every system with a compat module gets the generic ``convert <system>`` (= ``v2v.load`` +
``save_pretrained``) and ``parity <system>`` (``run_parity`` -> ``ParityReport`` -> exit code)
unless its commands module defines its own. ``train`` finds ``system:`` in the registry.

Each command module defines ``register(cli: CLI)`` and keeps heavy imports inside its handlers.
Handlers take the parsed ``argparse.Namespace`` and return an exit status (0 on success).

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
    from v2v.registry import all_systems

    systems = all_systems()
    system_modules = {spec.commands for spec in systems.values() if spec.commands}
    for mod_name in _command_modules():
        if mod_name not in system_modules:
            importlib.import_module(mod_name).register(cli)
    _register_systems(cli, systems)
    return parser


def _command_modules() -> list[str]:
    """Every module of :mod:`v2v.commands` (pkgutil), in name order."""
    import pkgutil

    import v2v.commands as pkg

    return [f"{pkg.__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)
            if not m.name.startswith("_")]


def _register_systems(cli: CLI, systems: dict) -> None:
    """Each registered system's own verbs (``commands=``), then the generic ``convert <system>``
    and ``parity <system>`` for systems with a compat module whose commands did not add them."""
    done = set()
    for spec in systems.values():
        if spec.commands and spec.commands not in done:
            done.add(spec.commands)
            try:
                mod = importlib.import_module(spec.commands)
            except ModuleNotFoundError as exc:
                if exc.name == spec.commands:  # declared, not written yet
                    continue
                raise
            mod.register(cli)
    for verb, add in (("convert", _add_generic_convert), ("parity", _add_generic_parity)):
        have = set(cli._groups[verb].choices) if verb in cli._groups else set()
        for name, spec in systems.items():
            if spec.compat and name not in have and name.replace("-", "_") not in have:
                add(cli, name, [name.replace("-", "_")] if "-" in name else [])


def _add_generic_convert(cli: CLI, name: str, aliases: list[str]) -> None:
    p = cli.group_command("convert", name, help=f"convert an official {name} checkpoint (v2v.load + save_pretrained)",
                          aliases=aliases)
    p.add_argument("checkpoint", help="official checkpoint file or folder")
    p.add_argument("--config", "--opt", dest="config", default=None,
                   help="official config / opt.txt (default: found beside the checkpoint)")
    p.add_argument("--out", required=True, help=f"output folder: {name}.safetensors + {name}.yaml")
    p.set_defaults(func=_generic_convert, system=name)


def _add_generic_parity(cli: CLI, name: str, aliases: list[str]) -> None:
    p = cli.group_command("parity", name, help=f"run every case of an official {name} fixture folder",
                          aliases=aliases)
    p.add_argument("fixture_dir", help="fixture folder (official checkpoint, options, cases)")
    p.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    p.set_defaults(func=_generic_parity, system=name)


def _generic_convert(args) -> int:
    import v2v

    system = v2v.load(args.checkpoint, args.config)
    if type(system).system_name != args.system:
        raise V2VError(f"{args.checkpoint}: a '{type(system).system_name}' checkpoint, not {args.system}")
    paths = system.save_pretrained(args.out)
    print(f"wrote {paths['weights']}\nwrote {paths['config']}")
    return 0


def _generic_parity(args) -> int:
    from v2v.registry import get_spec

    report = get_spec(args.system).compat_module().run_parity(args.fixture_dir)
    if getattr(args, "quiet", False):
        for line in report.lines():
            if line.startswith("FAIL"):
                print(line)
        print(report.summary())
    else:
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
        from v2v.utils import check_cli_outputs

        check_cli_outputs(args, parser)  # output == / contains / inside an input, unwritable: before any work
        rc = args.func(args)
        return int(rc or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(f"error: {_error_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (V2VError, OSError, RecursionError, MemoryError)) else 1


def _error_line(exc: BaseException) -> str:
    """One clean line for the terminal: V2VError as is; OS errors as 'what: file'; others typed."""
    from v2v.errors import clean_text

    if isinstance(exc, V2VError):
        return clean_text(str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        return clean_text(f"{exc.strerror}: {where}" if where else exc.strerror, 400)
    if isinstance(exc, RecursionError):
        return "input nested too deeply (recursion limit reached while reading it)"
    if isinstance(exc, MemoryError):
        return "out of memory (an input or option asks for more memory than this machine has)"
    return clean_text(f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", 400)


if __name__ == "__main__":
    sys.exit(main())
