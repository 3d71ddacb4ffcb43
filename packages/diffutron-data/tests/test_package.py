import re
from importlib.metadata import requires


def test_needs_no_other_diffutron_package_but_the_shared_policies():
    internal = [r for r in requires("diffutron-data") or [] if r.startswith("diffutron")]
    assert [re.split(r"[<>=!~;\s]", r, maxsplit=1)[0] for r in internal] == ["diffutron-common"]
