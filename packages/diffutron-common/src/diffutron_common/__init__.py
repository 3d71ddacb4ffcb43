"""diffutron-common: the policies every Diffutron package shares, in one place each.

* :class:`DiffutronError` - a user's mistake in one line; every package's error class derives from
  it and the apps print it without a traceback (:func:`reason` quotes a library's exception).
* :mod:`diffutron_common.files` - folders the project owns (a marker file), outputs written under a
  temporary name and renamed into place, outputs that are never inputs.
* :mod:`diffutron_common.text` - user files read as UTF-8, or one line naming file, line and byte.
* :func:`check_number` - a setting that is a finite number in range, or one line saying so.

Standard library only, so that every package can depend on it.
"""

from importlib.metadata import version

from diffutron_common.checks import check_number
from diffutron_common.errors import DiffutronError, one_line_text, reason
from diffutron_common.files import (
    MARKER,
    PathError,
    atomic_path,
    atomic_write,
    building_folder,
    check_output_file,
    check_output_folder,
    check_replaceable,
    claim_folder,
    owned,
    read_marker,
    remove_owned,
    remove_stale_temps,
    replace_path,
    write_bytes,
    write_marker,
    write_text,
)
from diffutron_common.progress import progress_enabled
from diffutron_common.text import (
    DecodeError,
    ReadError,
    check_text,
    iter_lines,
    read_bytes,
    read_text,
    text_problem,
)

__version__ = version("diffutron-common")

__all__ = [
    "MARKER",
    "DecodeError",
    "DiffutronError",
    "PathError",
    "ReadError",
    "__version__",
    "atomic_path",
    "atomic_write",
    "building_folder",
    "check_number",
    "check_output_file",
    "check_output_folder",
    "check_replaceable",
    "check_text",
    "claim_folder",
    "iter_lines",
    "one_line_text",
    "owned",
    "progress_enabled",
    "read_bytes",
    "read_marker",
    "read_text",
    "reason",
    "remove_owned",
    "remove_stale_temps",
    "replace_path",
    "text_problem",
    "write_bytes",
    "write_marker",
    "write_text",
]
