"""Speed of the members engine at the paper's presets, against a roofline measured in the same run.

For each preset (default: the five UCI datasets) and block, a fresh Python process
trains one full cell (10 h x 10 trials = 100 members, the preset's depth, width and
batch size) for ``--epochs`` epochs and reports:

- ``steps``: training steps per epoch at the preset (training rows / batch size);
- ``step``: seconds per step, from the last timed epoch (the earlier ones warm up);
- ``set-up``: seconds from starting the process (``python`` itself, the imports, data
  loading, building the 100 members with their own initial weights, compiling) to the
  start of training at full speed: the end of the first epoch less that epoch's steps
  at the steady step time;
- ``cell``: the estimated full cell at the paper's epochs, set-up + steps x epochs x step
  + the evaluation of every member after training;
- ``roofline``: the best time, over numpy (CPU runs) and the Keras backend's compiled
  product (``tf.function`` or ``jax.jit``), of ONE batched matmul at the preset's member shape, (M, b, w) @ (M, w, w) with M = 100 members, b = batch size,
  w = width, measured in this run. A training step needs at least 6 such products a
  block (2 forward, 4 backward), so ``bound = 6 x depth x roofline`` is a lower bound of
  the step, and ``step / bound`` says how far the engine is from what the machine's
  fastest batched matmul allows. (Adam, the element-wise work and the activations'
  memory traffic are not in the bound; at batch 10 those dominate.)

Then the estimated whole reproduction: every preset x the three blocks.

``--profile SECONDS`` (Linux ``perf`` needed) samples each cell's process for that long
from the end of its first epoch, i.e. in steady-state training (give enough ``--epochs``
that training outlasts the window), and prints where the time goes: the share of CPU
samples in matmul kernels (oneDNN and JIT-compiled code, which includes the XLA-compiled
update), broadcasting, reductions, other element-wise kernels, memory copies
(transposes, packing), malloc/free, and TensorFlow's executor.

The engine is the one of Keras's backend (``KERAS_BACKEND``: TensorFlow by default, or
``jax``: the whole step one XLA program, the route to a GPU without TensorFlow).

Run: ``python benchmarks/bench_presets.py [--datasets adult] [--blocks residual] [--epochs 2] [--device gpu]
[--profile 15]``; ``KERAS_BACKEND=jax python benchmarks/bench_presets.py --device gpu`` on a GPU with JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

PAPER_DATASETS = ("wine", "abalone", "absenteeism", "autism", "adult")
PAPER_BLOCKS = ("residual", "batchnorm", "shrinkage")


def run_cell(dataset: str, block: str, epochs: int, device: str, trials: int = 10) -> dict:
    """Child process: train one cell (10 h x ``trials`` members) for ``epochs`` epochs and
    return its timings."""
    from resnet_stability.sweep.devices import select_device

    info = select_device(device)
    from resnet_stability.sweep.experiment import resolve_spec
    from resnet_stability.sweep.runner import load_spec_dataset
    from resnet_stability.sweep.trainer import train_cell, xla_mode

    spec = resolve_spec(dataset, {"blocks": (block,), "epochs": epochs, "trials": trials})
    data = load_spec_dataset(spec)
    marks = []

    def epoch_end(epoch, *_):
        marks.append(time.time())
        print(f"EPOCH_END {epoch + 1}", flush=True)  # --profile starts sampling at the first

    result = train_cell(data, spec, block, device=info.name, xla=xla_mode("auto", info.kind),
                        on_epoch_end=epoch_end)
    finished = time.time()
    n_train = len(result.plans[0].train_idx)
    steps = -(-n_train // spec.batch_size)
    return dict(
        dataset=dataset, block=block, device=info.description, depth=spec.depth, width=spec.width,
        batch=spec.batch_size, members=spec.members_per_cell, steps=steps, epoch_marks=marks,
        step=(marks[-1] - marks[-2]) / steps, evaluation=finished - marks[-1],
    )


def roofline(members: int, batch: int, width: int, device: str, repeats: int = 7) -> dict:
    """Best seconds per batched matmul (M, b, w) @ (M, w, w): numpy (on a CPU), and the
    Keras backend's compiled product (TensorFlow in a graph, or one ``jax.jit`` program)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(members, batch, width)).astype(np.float32)
    k = rng.normal(size=(members, width, width)).astype(np.float32) / width
    inner = max(20, int(2e7 / (2 * members * batch * width * width)))  # ~20 MFLOP a timing

    def best(run):
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) / inner)
        return min(times)

    def numpy_loop():
        for _ in range(inner):
            np.matmul(x, k)

    results = {"numpy": best(numpy_loop)} if device == "cpu" else {}
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        kernels = jnp.stack([jnp.asarray(k)] * inner)  # independent products, as in a backward pass

        @jax.jit
        def jax_products(x, kernels):
            return jnp.sum(jax.vmap(lambda kernel: jnp.sum(jnp.matmul(x, kernel)[:, :1]))(kernels))

        xj = jnp.asarray(x)
        results["jax"] = best(lambda: jax_products(xj, kernels).block_until_ready())
    else:
        import tensorflow as tf

        kernels = [tf.constant(k) for _ in range(inner)]  # independent products, as in a backward pass

        @tf.function
        def tf_products(x):
            return tf.add_n([tf.reduce_sum(tf.linalg.matmul(x, kernel)[:, :1]) for kernel in kernels])

        xt = tf.constant(x)
        results["tensorflow"] = best(lambda: tf_products(xt).numpy())
    return results


def child_main(args) -> None:
    started = float(os.environ["BENCH_PROCESS_START"])
    report = run_cell(args.child_dataset, args.child_block, args.epochs, args.device, args.trials)
    # set-up: process start to the end of the first epoch, less that epoch at the steady step time
    report["setup"] = report["epoch_marks"][0] - started - report["steps"] * report["step"]
    report["roofline"] = roofline(report["members"], report["batch"], report["width"], args.device)
    print("RESULT " + json.dumps(report), flush=True)


#: --profile's categories: the first pattern matching a sample's "library symbol" names it.
PROFILE_CATEGORIES = (
    ("matmul (oneDNN, JIT code)", r"dnnl|brgemm|\[JIT\]|jit_|gemm"),
    ("broadcasting", r"Broadcast|TensorBlockIO"),
    ("reductions", r"Reduc"),
    ("memory copies (transposes, packing)", r"memmove|memcpy|memset|Transpose|Shuffling|Concat|Split"),
    ("malloc/free", r"malloc|_int_free|cfree|unlink_chunk|consolidate|memalign"),
    ("other element-wise (Eigen)", r"Eigen|scalar_"),
    ("TensorFlow executor, runtime", r"tensorflow::|absl|std::|tsl::|libtensorflow"),
    ("Python", r"python|_Py|Py[A-Z]"),
)


def profile_shares(perf_data: str) -> dict[str, float]:
    """Share (%) of the samples in ``perf_data`` per :data:`PROFILE_CATEGORIES` (self time)."""
    report = subprocess.run(["perf", "report", "-i", perf_data, "--sort", "dso,symbol", "--stdio", "-t", "|"],
                            capture_output=True, text=True).stdout
    shares: dict[str, float] = {}
    for line in report.splitlines():
        parts = line.split("|")
        if len(parts) < 3 or not parts[0].strip().endswith("%"):
            continue
        text = parts[1].strip() + " " + parts[2].strip()
        name = next((name for name, pattern in PROFILE_CATEGORIES if re.search(pattern, text)), "other")
        shares[name] = shares.get(name, 0.0) + float(parts[0].strip()[:-1])
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def measure(dataset: str, block: str, args) -> dict:
    env = dict(os.environ, BENCH_PROCESS_START=repr(time.time()), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--child-dataset", dataset, "--child-block", block,
               "--epochs", str(args.epochs), "--device", args.device, "--trials", str(args.trials)]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, perf, perf_data = [], None, os.path.join(tempfile.gettempdir(), f"bench_presets_{os.getpid()}.perf")
    for line in child.stdout:
        lines.append(line)
        if args.profile and perf is None and line.startswith("EPOCH_END 1"):
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-o", perf_data, "-p", str(child.pid),
                                     "--", "sleep", str(args.profile)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child.wait()
    results = [line for line in lines if line.startswith("RESULT ")]
    if child.returncode != 0 or not results:
        raise RuntimeError(f"{dataset} x {block} failed:\n{''.join(lines)[-5000:]}")
    report = json.loads(results[-1][len("RESULT "):])
    if perf is not None:
        perf.wait()
        report["profile"] = profile_shares(perf_data)
        os.remove(perf_data)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(PAPER_DATASETS))
    parser.add_argument("--blocks", default=",".join(PAPER_BLOCKS))
    parser.add_argument("--epochs", type=int, default=2, help=">= 2: the last epoch is timed")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--trials", type=int, default=10,
                        help="trials per h (default 10, the paper's: 100 members a cell); more members "
                             "per model show how idle a device is at the paper's cell size")
    parser.add_argument("--json", help="also write the measurements to this file")
    parser.add_argument("--profile", type=float, default=0,
                        help="seconds of perf sampling from the end of each cell's first epoch (0: none)")
    parser.add_argument("--child-dataset", help=argparse.SUPPRESS)
    parser.add_argument("--child-block", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the last epoch is timed)")
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")
    if args.profile and not shutil.which("perf"):
        parser.error("--profile needs Linux perf on the PATH (it samples each cell's process)")
    if args.child_dataset:
        child_main(args)
        return

    from resnet_stability.sweep.experiment import PRESETS

    datasets, blocks = args.datasets.split(","), args.blocks.split(",")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; device: {args.device}; "
          f"Keras backend: {os.environ.get('KERAS_BACKEND', 'tensorflow')}; "
          f"{args.epochs} epochs per cell, the last timed; one fresh process per cell; "
          f"{10 * args.trials} members per cell (10 h × {args.trials} trials)")
    header = (f"{'dataset':<12} {'block':<10} {'depth×width×batch':>18} {'steps':>6} {'step':>9} {'bound':>9} "
              f"{'step/bound':>10} {'set-up':>7} {'cell':>8}")
    print(header)
    rows, total = [], 0.0
    for dataset in datasets:
        for block in blocks:
            r = measure(dataset, block, args)
            best = min(r["roofline"].values())
            bound = 6 * r["depth"] * best
            cell = r["setup"] + r["steps"] * PRESETS[dataset]["epochs"] * r["step"] + r["evaluation"]
            total += cell
            r.update(bound=bound, ratio=r["step"] / bound, cell=cell)
            rows.append(r)
            shape = f"{r['depth']}×{r['width']}×{r['batch']}"
            print(f"{dataset:<12} {block:<10} {shape:>18} {r['steps']:>6} {r['step'] * 1e3:>7.1f}ms "
                  f"{bound * 1e3:>7.1f}ms {r['ratio']:>9.2f}x {r['setup']:>6.1f}s {cell / 60:>6.1f}min", flush=True)
            if "profile" in r:
                print("    profile: " + ", ".join(f"{name} {share:.0f}%" for name, share in r["profile"].items()
                                                  if share >= 1), flush=True)
    print(f"device: {rows[0]['device']}")
    kinds = list(rows[0]["roofline"])
    print(f"roofline per batched matmul ({' / '.join(kinds)}, µs): " + ", ".join(
        f"{r['dataset']} " + "/".join(f"{r['roofline'][kind] * 1e6:.0f}" for kind in kinds)
        for r in rows if r["block"] == blocks[0]))
    print(f"estimated whole reproduction ({len(datasets)} datasets × {len(blocks)} blocks, paper epochs): "
          f"{total / 60:.1f} min")
    if args.trials != 10:  # cells of 10 x trials members: the time per 100 networks, i.e. per paper cell
        print(f"  cells of {10 * args.trials} members: {total / 60 * 10 / args.trials:.1f} min per "
              f"100 networks a cell, were {args.trials / 10:g} paper cells stacked into one model")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()
