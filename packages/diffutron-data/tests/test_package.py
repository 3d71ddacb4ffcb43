import re
from importlib.metadata import requires, version

import diffutron_data


def test_version_is_the_distribution_version():
    assert diffutron_data.__version__ == version("diffutron-data")


def test_needs_no_other_diffutron_package_but_the_shared_policies():
    internal = [r for r in requires("diffutron-data") or [] if r.startswith("diffutron")]
    assert [re.split(r"[<>=!~;\s]", r, maxsplit=1)[0] for r in internal] == ["diffutron-common"]


def test_declared_backends_import():
    import datasets
    import transformers

    assert datasets.__version__ and transformers.__version__
