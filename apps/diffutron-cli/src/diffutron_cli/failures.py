"""How a command fails: the libraries' user errors and file-system failures as one line, SIGTERM
unwinding like Ctrl-C, and an interrupt never turned into a traceback by a library's clean-up."""

from __future__ import annotations

import functools
import os

import click


def _stop_on_sigterm() -> None:
    """Let SIGTERM (``kill``, a scheduler's pre-emption) unwind like Ctrl-C: every temporary file
    is removed on the way out and nothing half-written is left in place."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _warn_unknown_envvars() -> None:
    """Say so when a ``DIFFUTRON_<APP>_<COMMAND>_…`` variable names no option of the running
    command (a misspelt variable would otherwise be ignored without a word)."""
    from diffutron_cli.lazy import FlagEnvOption

    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.auto_envvar_prefix:
        return
    known: set[str] = set()
    for param in ctx.command.params:
        if isinstance(param, FlagEnvOption):
            known.update(param.envvar_names(ctx))
        elif isinstance(param, click.Option) and param.name:
            known.add(f"{ctx.auto_envvar_prefix}_{param.name.upper()}")
    prefix = f"{ctx.auto_envvar_prefix}_"
    for name in sorted(os.environ):
        if name.startswith(prefix) and name not in known:
            click.echo(
                f"warning: {name} names no option of '{ctx.info_name}'; it is ignored", err=True
            )


def friendly_errors(command):
    """Print the libraries' user errors (:class:`diffutron_common.DiffutronError`) and file-system
    failures as one-line ``click.ClickException`` messages, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from diffutron_common import DiffutronError

        _stop_on_sigterm()
        _warn_unknown_envvars()
        try:
            return command(*args, **kwargs)
        except DiffutronError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a full disk, a vanished folder: say which file and why
            where = f" {exc.filename}" if exc.filename else ""
            raise click.ClickException(
                f"cannot use{where}: {exc.strerror or exc}; check the path and free space"
            ) from None
        except Exception as exc:
            stop = _interrupt_behind(exc)
            if stop is None:
                raise
            raise stop from None

    return wrapper


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The SIGTERM exit or Ctrl-C that ``exc`` was raised while handling, if any: a library's
    clean-up (a worker pool timing out as it stops) must not turn an interrupt into a
    traceback."""
    found: BaseException | None = exc
    seen = set()
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, SystemExit | KeyboardInterrupt):
            return found
        found = found.__context__
    return None
