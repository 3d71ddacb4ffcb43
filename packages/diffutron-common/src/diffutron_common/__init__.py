"""diffutron-common: the policies every Diffutron package shares, in one place each.

* :class:`DiffutronError` - a user's mistake in one line; every package's error class derives from
  it and the apps print it without a traceback (:func:`reason` quotes a library's exception).
* How every command writes files: never over what it did not make, never half-written (one
  module per policy: ``ownership``, ``temps``, ``atomic``, ``outputs``, on ``paths``).
* :mod:`diffutron_common.text` - user files read as UTF-8, or one line naming file, line and byte.
* :func:`check_number` - a setting that is a finite number in range, or one line saying so.

Standard library only, so that every package can depend on it.

The file policies:

* **Ownership.** A folder the project makes (a run, a prepared corpus, an exported model, a demo,
  a benchmark's results) carries a marker file, :data:`MARKER`, naming its kind. Only a folder with
  the marker of the expected kind (or an empty one) is ever replaced or written into; anything
  else is refused in one line naming the folder.
* **Atomic outputs.** Every file or folder is built under a temporary name beside its final place
  and renamed into place only when complete (:func:`atomic_write`, :func:`atomic_path`,
  :func:`building_folder`), so a crash leaves the previous version or nothing, never a half.
  Temporary names carry :data:`TEMP_TAG` and the writer's process id, so a later run can clear
  the leftovers of a killed one (:func:`remove_stale_temps`).
* **Inputs are never outputs.** :func:`check_output_file` refuses an output that is also an
  input, a folder, or a place that cannot be written, before any work starts.
"""

from importlib.metadata import version

from diffutron_common.atomic import atomic_path, atomic_write, write_bytes, write_text
from diffutron_common.checks import check_number
from diffutron_common.errors import DiffutronError, one_line_text, reason
from diffutron_common.outputs import check_output_file, check_output_folder
from diffutron_common.ownership import (
    MARKER,
    building_folder,
    check_replaceable,
    claim_folder,
    owned,
    read_marker,
    remove_owned,
    replace_path,
    write_marker,
)
from diffutron_common.paths import PathError, check_model_source, looks_like_path
from diffutron_common.progress import progress_enabled
from diffutron_common.temps import fsync_tree, is_temp, remove_stale_temps, temp_sibling
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
    "check_model_source",
    "check_number",
    "check_output_file",
    "check_output_folder",
    "check_replaceable",
    "check_text",
    "claim_folder",
    "fsync_tree",
    "is_temp",
    "iter_lines",
    "looks_like_path",
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
    "temp_sibling",
    "text_problem",
    "write_bytes",
    "write_marker",
    "write_text",
]
