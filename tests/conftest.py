"""Shared test set-up: quiet TensorFlow and two logical CPU devices for strategy tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
except RuntimeError:  # already initialized by an earlier import
    pass


def pytest_terminal_summary(terminalreporter, config):
    """Names the random order's seed at the end, where `-q` still shows it (pytest-randomly
    prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.has_plugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(f"tests ran in a random order: repeat it with "
                                    f"--randomly-seed={seed} (-p no:randomly: file order)")


# The files that take longest (wall seconds on 2 cores, measured with --durations=0): they
# go to the workers first (scripts/test.sh passes --no-loadscope-reorder, so xdist keeps this
# order instead of sorting files by their number of tests), so that no worker is left
# alone with a long file at the end. The other files keep their (random) order, and every
# file the order of its tests.
LONG_FILES = ("test_nets.py", "test_export_registry.py", "test_recipes.py",
              "test_input_pipeline.py", "test_export.py", "test_walkthrough.py",
              "test_train_cli.py", "test_evaluate.py", "test_cli_help.py", "test_train.py",
              "test_input_cache.py", "test_benchmark.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable
