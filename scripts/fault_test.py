"""Fault test of slim-train: random `kill -9` during training, each followed by a resume,
and two trainers started on one directory. Not part of the unit suite (minutes).

    python scripts/fault_test.py --kills=20 [--workdir=/tmp/fault] [--save_interval_steps=5]

Each round starts lenet on generated data in one train_dir (saving often), waits until it
trains, then kills it with SIGKILL at a random moment. The next round must resume from the
newest checkpoint on disk (read before it starts). After the last kill a short clean run
finishes. Printed: resumed/N (rounds that resumed from the checkpoint the kill left),
corrupt/N (newest checkpoints that could not be read back after a kill), the most steps a
kill cost (last step logged minus the step resumed from), and the temporary files left
after the final run. Then a second trainer on a directory in use must refuse in one line.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_LINE = re.compile(r"global step (\d+): loss")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def _command(train_dir: str, max_steps: int, save_interval_steps: int) -> list[str]:
    return [sys.executable, "-m", "slimcli.cli.train", "--model_name=lenet", "--synthetic_data",
            f"--train_dir={train_dir}", "--batch_size=8", "--optimizer=sgd",
            "--learning_rate_decay_type=fixed", "--weight_decay=0", "--log_every_n_steps=1",
            "--save_summaries_secs=0", "--save_interval_secs=1",
            f"--save_interval_steps={save_interval_steps}", f"--max_number_of_steps={max_steps}"]


def _start(train_dir: str, log_path: str, max_steps: int, every: int) -> subprocess.Popen:
    log = open(log_path, "w")
    return subprocess.Popen(_command(train_dir, max_steps, every), env=_env(), cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def _steps(log_path: str) -> list[int]:
    with open(log_path, errors="replace") as f:
        return [int(m) for m in STEP_LINE.findall(f.read())]


def _wait_training(proc: subprocess.Popen, log_path: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _steps(log_path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"trainer exited with {proc.returncode}: see {log_path}")
        time.sleep(0.2)
    raise RuntimeError(f"trainer did not start training in {timeout} s: see {log_path}")


def _newest(train_dir: str) -> tuple[str | None, bool]:
    """(newest checkpoint on disk, readable?) as a resume would see it."""
    import tensorflow as tf
    from slimcli.slim import checkpoints
    found = checkpoints.list_checkpoints(train_dir)
    if not found:
        return None, True
    try:
        reader = tf.train.load_checkpoint(found[0])
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception:  # noqa: BLE001 - any failure to read it back counts as corrupt
        return found[0], False
    return found[0], True


def _leftovers(train_dir: str) -> list[str]:
    names = os.listdir(train_dir)
    return [n for n in names if n.startswith(".tmp") or n == ".lock" or (
        ".data-" in n and n.split(".data-")[0] + ".index" not in names)]


def kill_rounds(workdir: str, kills: int, every: int, seed: int) -> dict:
    rng = random.Random(seed)
    train_dir = os.path.join(workdir, "train")
    resumed = corrupt = 0
    max_lost = 0
    expected = None  # the checkpoint the previous kill left
    for i in range(kills + 1):
        log_path = os.path.join(workdir, f"run{i:02d}.log")
        final = i == kills
        target = (int(expected.rsplit("-", 1)[1]) + 5) if final and expected else 10 ** 7
        proc = _start(train_dir, log_path, target, every)
        try:
            if final:
                proc.wait(timeout=600)
            else:
                _wait_training(proc, log_path)
                time.sleep(rng.uniform(0.5, 4.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(log_path, errors="replace") as f:
            text = f.read()
        if i > 0:
            started = re.search(r"Resuming from (\S+)", text)
            ok = started is not None and started.group(1) == expected
            resumed += ok
            steps = _steps(log_path)
            print(f"round {i:2d}: resumed from {started.group(1) if started else None} "
                  f"({'ok' if ok else 'expected ' + str(expected)})", flush=True)
        if final:
            if proc.returncode != 0:
                print(text[-2000:])
            break
        newest, readable = _newest(train_dir)
        corrupt += not readable
        last = max(_steps(log_path) or [0])
        saved = int(newest.rsplit("-", 1)[1]) if newest else 0
        max_lost = max(max_lost, last - saved)
        print(f"kill {i + 1:2d}: last step {last}, newest checkpoint {newest} "
              f"({'readable' if readable else 'CORRUPT'}), {last - saved} steps lost, "
              f"{len(_leftovers(train_dir))} leftovers before the next start", flush=True)
        expected = newest
    return {"kills": kills, "resumed": resumed, "corrupt": corrupt, "max_lost": max_lost,
            "leftovers": _leftovers(train_dir), "final_rc": proc.returncode}


def concurrent(workdir: str, every: int) -> tuple[bool, str]:
    """Starts two trainers on one directory; True when the second refuses in one line."""
    train_dir = os.path.join(workdir, "shared")
    first = _start(train_dir, os.path.join(workdir, "first.log"), 10 ** 7, every)
    try:
        _wait_training(first, os.path.join(workdir, "first.log"))
        second = subprocess.run(_command(train_dir, 10 ** 7, every), env=_env(), cwd=ROOT,
                                capture_output=True, text=True, timeout=600)
    finally:
        first.kill()
        first.wait()
    errors = [line for line in second.stderr.splitlines() if "in use by another" in line]
    refused = second.returncode != 0 and len(errors) == 1 and "Traceback" not in second.stderr
    return refused, errors[0] if errors else second.stderr[-500:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--workdir", default="/tmp/slimcli_fault_test")
    parser.add_argument("--save_interval_steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    result = kill_rounds(args.workdir, args.kills, args.save_interval_steps, args.seed)
    refused, line = concurrent(args.workdir, args.save_interval_steps)
    n = result["kills"]
    print(f"resumed {result['resumed']}/{n}")
    print(f"corrupt {result['corrupt']}/{n}")
    print(f"max steps lost {result['max_lost']}")
    print(f"leftover temporary files {len(result['leftovers'])} {result['leftovers']}")
    print(f"final clean run exit status {result['final_rc']}")
    print(f"second trainer on a directory in use refused: {refused}: {line}")
    good = result["resumed"] == n and not result["corrupt"] and not result["leftovers"] \
        and result["final_rc"] == 0 and refused
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
