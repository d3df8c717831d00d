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
