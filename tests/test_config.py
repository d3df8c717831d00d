"""One flag→config mechanism: every command's flags are generated from its config dataclass,
so each default and help text is written once (in the dataclass)."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Optional

import pytest
from absl import flags

import slimcli.cli
from slimcli import config as config_lib
from slimcli.errors import SlimError

CLI_MODULES = sorted(m.name for m in pkgutil.iter_modules(slimcli.cli.__path__)
                     if m.name != "base")


def _command(module_name):
    return importlib.import_module(f"slimcli.cli.{module_name}").COMMAND


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_no_cli_module_holds_a_flag_table(module_name):
    source = Path(importlib.import_module(f"slimcli.cli.{module_name}").__file__).read_text()
    assert not re.search(r"DEFINE_\w+\(|FLAG_TABLE", source), \
        f"slimcli/cli/{module_name}.py defines flags itself; put them on its config dataclass"


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_generated_flags_are_the_config_fields(module_name):
    command = _command(module_name)
    config_class = command.config_class()
    fv = flags.FlagValues()
    command.define_flags(fv)
    fields = [f for f in dataclasses.fields(config_class) if "help" in f.metadata]
    assert fields, f"{config_class.__name__} has no flag field"
    names = [name for name in fv if name not in config_lib.ALIASES]
    assert names == [f.name for f in fields]  # field order is flag order
    for field in fields:
        assert fv[field.name].default == field.default, field.name
        assert fv[field.name].help.endswith(field.metadata["help"]), field.name  # enum: <a|b>:
    # Flags at their defaults build the default config.
    fv(["prog"])
    assert config_lib.from_flags(config_class, fv) == config_class()


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_every_config_validates_at_its_library_call(module_name):
    assert callable(getattr(_command(module_name).config_class(), "validate", None))


def test_flag_kinds_come_from_the_field_types():
    @dataclasses.dataclass
    class Toy:
        name: str = config_lib.option("a", "A name.")
        count: Optional[int] = config_lib.option(None, "A count.", lower_bound=0)
        rate: float = dataclasses.field(default=0.5, metadata={"help": "A rate."})
        on: bool = config_lib.option(False, "A switch.")
        mode: str = config_lib.option("x", "A mode.", choices=("x", "y"))
        model_name: str = config_lib.option("lenet", "A net.")
        internal: list = dataclasses.field(default_factory=list)  # no help: no flag

    fv = flags.FlagValues()
    config_lib.define_flags(Toy, fv)
    assert list(fv) == ["name", "count", "rate", "on", "mode", "model_name", "model"]
    fv(["prog", "--name=b", "--count", "3", "--rate=0.25", "--on", "--mode=y", "--model",
        "vgg_16"])
    assert config_lib.from_flags(Toy, fv) == Toy("b", 3, 0.25, True, "y", "vgg_16")
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", "--count=-1"])
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", "--mode=z"])


def test_a_flag_field_of_an_unsupported_type_is_refused():
    @dataclasses.dataclass
    class Bad:
        sizes: list = config_lib.option((), "Sizes.")

    with pytest.raises(TypeError, match="Bad.sizes"):
        config_lib.define_flags(Bad, flags.FlagValues())


def test_from_mapping_names_unknown_settings():
    from slimcli.train import TrainConfig
    with pytest.raises(SlimError, match="nosuch"):
        TrainConfig.from_mapping({"nosuch": 1})


def test_every_dataset_download_option_is_a_download_setting():
    from slimcli.datasets import DATASETS
    from slimcli.download import DownloadConfig
    settings = {f.name for f in dataclasses.fields(DownloadConfig)}
    for name, spec in DATASETS.items():
        assert set(spec.download_options) <= settings, name


def test_download_rejects_a_setting_of_other_datasets():
    from slimcli.download import DownloadConfig
    with pytest.raises(SlimError, match="--coco_dirname applies to "
                                        "--dataset_name=visualwakewords, not 'mnist'"):
        DownloadConfig(dataset_name="mnist", dataset_dir="/tmp/x", coco_dirname="c").validate()
    DownloadConfig(dataset_name="visualwakewords", dataset_dir="/tmp/x",
                   coco_dirname="c").validate()
