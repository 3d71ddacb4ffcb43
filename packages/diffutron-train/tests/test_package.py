from importlib.metadata import version

import diffutron_train


def test_version_is_the_distribution_version():
    assert diffutron_train.__version__ == version("diffutron-train")


def test_declared_backends_import():
    import accelerate
    import bitsandbytes
    import peft

    import diffutron_core
    import diffutron_data

    assert all(
        m.__version__ for m in (accelerate, bitsandbytes, peft, diffutron_core, diffutron_data)
    )
