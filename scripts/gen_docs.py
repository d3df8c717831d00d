"""Regenerates the README's generated sections from the code, so they cannot drift.

    python scripts/gen_docs.py           # rewrite README.md in place
    python scripts/gen_docs.py --check   # exit 1 when README.md is stale (a test runs this)

A section sits between `<!-- generated:NAME -->` and `<!-- end generated:NAME -->`:
`flags:<command>` is the flag table of that command (from its `define_flags`, that is the
fields of its config dataclass, so names, defaults and help are the ones `--help` prints); `nets` is the table of every net of the
registry (image size, label_image node names and normalization, fine-tuning scopes, zoo
classes).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import flags  # noqa: E402

from slimcli.cli.base import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly(verbosity=0)

COMMANDS = {
    "slim-download": "slimcli.cli.download",
    "slim-train": "slimcli.cli.train",
    "slim-eval": "slimcli.cli.evaluate",
    "slim-export": "slimcli.cli.export",
    "slim-freeze": "slimcli.cli.freeze",
    "slim-predict": "slimcli.cli.predict",
    "slim-benchmark": "slimcli.cli.benchmark",
}
_SECTION = re.compile(r"(<!-- generated:(?P<name>[\w:-]+) -->\n)(?P<body>.*?)"
                      r"(<!-- end generated:(?P=name) -->)", re.S)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(flag) -> str:
    if flag.default is None:
        return ""
    if isinstance(flag.default, bool):
        return "true" if flag.default else "false"
    if isinstance(flag.default, (list, tuple)):
        return ",".join(map(str, flag.default))
    return f"`{flag.default}`" if str(flag.default) else "`''`"


def flag_table(command: str) -> str:
    """The markdown table of every flag of `command`, in definition order."""
    fv = flags.FlagValues()
    importlib.import_module(COMMANDS[command]).define_flags(fv)
    rows = ["| flag | default | what it does |", "|---|---|---|"]
    for name in fv:
        flag = fv[name]
        rows.append(f"| `--{name}` | {_default(flag)} | {_cell(flag.help or '')} |")
    return "\n".join(rows) + "\n"


def _output_node(spec) -> str:
    """The op label_image reads: the softmax, or the logits for nets without one."""
    if spec.predictions_op:
        return spec.predictions_op
    from slimcli.export import ExportConfig, build_inference_graph
    return build_inference_graph(ExportConfig(model_name=spec.name)).output_name


def nets_table() -> str:
    """One row per net of the registry."""
    from slimcli.datasets.checkpoints import ZOO
    from slimcli.nets import NETS_REGISTRY
    from slimcli.serving import client_preprocessing
    zoo = set(ZOO.names())
    rows = ["| `--model_name` | size | preprocessing | label_image `--output_layer` "
            "| `--input_mean` / `--input_std` | `--checkpoint_exclude_scopes` | zoo classes |",
            "|---|---|---|---|---|---|---|"]
    for name, spec in NETS_REGISTRY.items():
        pre = client_preprocessing(spec.preprocessing)
        normalization = f"{pre.input_mean:g} / {pre.input_std:g}" + ("" if pre.exact else " ≈")
        classes = "no zoo checkpoint" if name not in zoo else f"{spec.zoo_num_classes}" + (
            " (`--labels_offset=1`)" if spec.zoo_num_classes == 1000 else "")
        rows.append(f"| {name} | {spec.default_image_size} | {spec.preprocessing} | "
                    f"`{_output_node(spec)}` | {normalization} | "
                    f"`{spec.checkpoint_exclude_scopes}` | {classes} |")
    return "\n".join(rows) + "\n"


def label_image_flag_table() -> str:
    """The flags of the C++ label_image, read from the usage text in its source."""
    with open(os.path.join(ROOT, "cc", "label_image", "main.cc")) as f:
        source = f.read()
    usage = re.search(r"kUsage\[\] =\n(.*?);\n", source, re.S).group(1)
    rows = ["| flag | what it does (default) |", "|---|---|"]
    for line in re.findall(r'"(.*?)\\n"', usage):
        match = re.match(r"\s+(--\S+)\s+(.*)", line)
        if match:
            rows.append(f"| `{match.group(1)}` | {_cell(match.group(2))} |")
    return "\n".join(rows) + "\n"


def section(name: str) -> str:
    if name == "nets":
        return nets_table()
    if name == "flags:label_image":
        return label_image_flag_table()
    if name.startswith("flags:") and name[6:] in COMMANDS:
        return flag_table(name[6:])
    raise SystemExit(f"gen_docs: unknown generated section {name!r}; known: nets, "
                     f"flags:label_image, "
                     f"{', '.join('flags:' + c for c in COMMANDS)}")


def render(text: str) -> str:
    """`text` with every generated section rewritten."""
    return _SECTION.sub(lambda m: m.group(1) + section(m.group("name")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when the file is stale")
    parser.add_argument("--file", default=os.path.join(ROOT, "README.md"))
    args = parser.parse_args(argv)
    with open(args.file) as f:
        text = f.read()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.file} is stale: run python scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        with open(args.file, "w") as f:
            f.write(new)
        print(f"rewrote {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
