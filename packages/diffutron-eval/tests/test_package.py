from importlib.metadata import version

import diffutron_eval


def test_version_is_the_distribution_version():
    assert diffutron_eval.__version__ == version("diffutron-eval")


def test_declared_backends_import():
    import lm_eval

    import diffutron_core
    import diffutron_sample

    assert lm_eval.__version__ and diffutron_core.__version__ and diffutron_sample.__version__
