"""`slim-benchmark`: how fast a net trains and infers on this machine, beside Keras 3.

    slim-benchmark --model_name=resnet_v1_50 --mode=train --batch_size=16 --compare_keras
    slim-benchmark --model_name=mobilenet_v1 --mode=all --data=/data/flowers --output_json=b.json

Flags: the fields of `slimcli.benchmark.BenchmarkConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command

DESCRIPTION = """How fast a net trains and infers here (images/sec, step time, memory,
FLOPs), beside Keras 3 with --compare_keras.

  slim-benchmark --model_name=resnet_v1_50 --mode=train --batch_size=16 --compare_keras"""


def _benchmark(config) -> None:
    from slimcli.benchmark import format_result, run_benchmark
    print(format_result(run_benchmark(config)))


COMMAND = Command("slim-benchmark", DESCRIPTION, "slimcli.benchmark:BenchmarkConfig", _benchmark)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
