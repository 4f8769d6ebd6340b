"""Does the data path scale past memory? The image store and the streamed feed, measured.

    python benchmarks/data_scale.py --work /tmp/medssl-data-scale [--quick]

Synthetic PNG folders made here (smooth random shapes plus noise, two class folders): N = 5k,
20k and 80k images at 128 px, 1 channel, and 20k at 224 px, 3 channels. Every measurement runs
in its own process, sampled every 50 ms for `RssAnon` (anonymous memory: what the process
itself holds; file-backed page cache is shared and reclaimable and is not counted):

1. store build: seconds and peak anonymous memory of decoding each folder into the store;
2. SimCLR pretraining (small CNN of width 8, batch 256, fp32, the default `medical`
   augmentation) streamed against resident, at 28 px and 128 px on the 20k folder: images/s
   over the steps after the first (two rounds, alternating; goal: streamed >= 0.9x resident);
3. peak anonymous memory of streamed pretraining at N = 5k, 20k and 80k (goal: flat in N, at
   most 10 % higher at 80k than at 5k), resident at 80k beside it, and each process of a
   2-process gloo torchrun at 5k and 80k;
4. `train.py` on the 20k 224 px RGB folder as `dataset=image_folder`, streamed forced (one
   epoch, `augmentation=none`, batches of 32 and 64 so that it fits a CPU session): it pretrains and
   evaluates with peak anonymous memory far below the store's size.

On this CPU an epoch at 128 px takes many minutes, so the runs of 2 and 3 train for `--seconds`
(60) and stop there through the loop's own stop path (SIGUSR1: checkpoint, then stop); each
still reads pages from across the whole store, since the batch order is a permutation of all N.

The table is printed and the figures written to `<work>/data_scale.json`; `--sections epoch`
measures that section again (on a quiet machine, say) and reprints the table with the others
as saved. Each ratio comes from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES_128 = (5_000, 20_000, 80_000)


def make_folder(root: Path, n: int, size: int, channels: int, seed: int = 0) -> Path:
    """`root/train/{a,b}/*.png`: smooth blobs on noise (PNG compresses them as it would scans)."""
    done = root / ".complete"
    if done.exists():
        return root
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(n):
        cls = "a" if i % 2 == 0 else "b"
        folder = root / "train" / cls
        folder.mkdir(parents=True, exist_ok=True)
        cx, cy, r = rng.uniform(0.2, 0.8, 3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.02 + 0.1 * r))
        base = 60 + 120 * blob * (1.3 if cls == "a" else 1.0)
        image = base[..., None] + rng.normal(0, 12, (size, size, channels))
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.clip(image, 0, 255).astype(np.uint8))
    done.touch()
    return root


def rss_anon_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        for child in map(int, children):
            found.append(child)
            stack.append(child)
    return found


def is_worker(pid: int) -> bool:
    try:
        return b"--worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd`; its seconds, its last stdout line as JSON, and the peak RssAnon (MiB) of
    each of its `--worker` processes (the process itself when it is one)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    peaks: dict[int, int] = {}
    count_self = "torch.distributed.run" not in cmd  # torchrun's own process is not measured
    while proc.poll() is None:
        pids = [proc.pid] if count_self else []
        for pid in [*pids, *filter(is_worker, descendants(proc.pid))]:
            peaks[pid] = max(peaks.get(pid, 0), rss_anon_kib(pid))
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return {
        "seconds": time.perf_counter() - started,
        "result": json.loads(lines[-1]) if lines else {},
        "peak_anon_mib": sorted(round(v / 1024, 1) for v in peaks.values()),
    }


def unlabelled_folder(root: str, size: int, channels: int, store: str):
    """conf/dataset/unlabelled_folder.yaml (its dtype, intensity, ...) on `root`."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from medssl.configs import config_dir

    option = OmegaConf.load(config_dir() / "dataset" / "unlabelled_folder.yaml")
    chosen = {"root": root, "size": size, "channels": channels, "store_dir": store}
    return instantiate(OmegaConf.merge(option, chosen))


def worker_build(root: str, size: int, channels: int, store: str) -> None:
    data = unlabelled_folder(root, size, channels, store)
    print(json.dumps({"n": len(data.train), "bytes": data.train.nbytes}))


def worker_epoch(
    root: str, size: int, channels: int, store: str, feed: str, seconds: float, batch: int
) -> None:
    """SimCLR on the store of `root`, fed `feed`, for one epoch or, with `seconds`, until a
    SIGUSR1 at that time stops it at a step boundary (the loop's own stop path); under
    torchrun, one process of it. Prints images/s over the steps after the first."""
    import signal
    import tempfile
    import threading

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from medssl.configs import config_dir
    from medssl.losses.nt_xent import NTXentLoss
    from medssl.methods.simclr import SimCLR
    from medssl.models.small_cnn import SmallCNN
    from medssl.training.batch_feed import make_feed
    from medssl.training.distributed import setup_distributed, teardown_distributed
    from medssl.training.optim import build_optimizer, build_scheduler
    from medssl.training.pretrain import PretrainSettings, pretrain
    from medssl.training.stop_signals import RunStopped

    distributed, device = setup_distributed("cpu")
    if distributed.enabled:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // distributed.world_size))
    data = unlabelled_folder(root, size, channels, store)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        augmentation = instantiate(compose(config_name="config").augmentation)  # the default
    torch.manual_seed(0)
    method = SimCLR(
        SmallCNN(channels, width=8, name="smallcnn", input_size=size),
        NTXentLoss(temperature=0.2, gather=True),  # as conf/method/simclr.yaml
        proj_hidden_dim=128,
        proj_dim=64,
    )
    step_ends = []
    original = method.on_step_end
    method.on_step_end = lambda progress: (
        original(progress),
        step_ends.append(time.perf_counter()),
    )
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGUSR1))
    if seconds:
        timer.start()
    # The stop at `seconds` ends the run with RunStopped after its checkpoint.
    with tempfile.TemporaryDirectory() as run_dir, contextlib.suppress(RunStopped):
        pretrain(
            method,
            augmentation,
            data.train.images,
            None,
            PretrainSettings(
                epochs=1,
                batch_size=batch,
                precision="fp32",
                seed=0,
                accumulate_steps=1,
                collapse_min_std=0.01,
                collapse_min_rank=2.0,
                eval_every=None,
                keep_epochs=(),
                checkpoint_every=None,
            ),
            optimizer_factory=functools.partial(
                build_optimizer,
                name="adamw",
                base_lr=1e-3,
                ref_batch_size=256,
                weight_decay=0,
                momentum=0.9,
            ),
            scheduler_factory=functools.partial(
                build_scheduler, warmup_epochs=0.1, min_lr_ratio=0.0, warmup_lr_ratio=0.0
            ),
            device=device,
            run_dir=Path(run_dir),
            fingerprint="data_scale",
            distributed=distributed,
            feed=make_feed(data.train.images, device, feed, None),
        )
    timer.cancel()  # an epoch that ended first must not be killed by a late signal
    rate = (len(step_ends) - 1) * batch / (step_ends[-1] - step_ends[0])
    if distributed.is_main:
        print(json.dumps({"images_per_s": rate, "steps": len(step_ends), "n": len(data.train)}))
    teardown_distributed()


def table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/medssl-data-scale"))
    parser.add_argument("--quick", action="store_true", help="N = 1k, 2k, 4k: a smoke run")
    parser.add_argument("--worker", choices=["build", "epoch"])
    parser.add_argument("--root")
    parser.add_argument("--size", type=int)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--store")
    parser.add_argument("--feed")
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sections", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args()
    if args.worker == "build":
        return worker_build(args.root, args.size, args.channels, args.store)
    if args.worker == "epoch":
        return worker_epoch(
            args.root, args.size, args.channels, args.store, args.feed, args.seconds, args.batch
        )
    sizes = (1_000, 2_000, 4_000) if args.quick else SIZES_128
    run_benchmark(args.work, sizes, 15 if args.quick else 60, args.sections)


def _worker(
    kind: str, root: Path, size: int, channels: int, store: Path, feed: str = "", seconds: float = 0
) -> list:
    cmd = [sys.executable, __file__, "--worker", kind, "--root", str(root), "--size", str(size)]
    cmd += ["--channels", str(channels), "--store", str(store), "--feed", feed]
    return cmd + ["--seconds", str(seconds)]


SECTIONS = ("build", "epoch", "flat", "train_py")


def run_benchmark(work: Path, sizes: tuple[int, ...], seconds: float, sections) -> None:
    """The `sections` asked for; the others are read back from an earlier run's JSON, so that a
    section can be measured again on a quiet machine (each ratio still comes from one run)."""
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "data_scale.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    folders = {n: make_folder(work / f"png128_{n}", n, 128, 1) for n in sizes}
    colour = make_folder(work / f"png224rgb_{sizes[1]}", sizes[1], 224, 3, seed=1)
    setup = (work / "stores", folders, colour, sizes, seconds, {"PYTHONPATH": str(REPO)})
    for section in sections:
        results.update(globals()[f"measure_{section}"](*setup))
        saved.write_text(json.dumps(results, indent=1, default=str))
    report(results, sizes)


def measure_build(store, folders, colour, sizes, seconds, env) -> dict:
    mid = sizes[1]
    out = {"build": {}}
    for name, (root, size, ch) in {
        **{f"{n} x 128 px x 1": (folders[n], 128, 1) for n in sizes},
        f"{mid} x 224 px x 3": (colour, 224, 3),
        f"{mid} x 28 px x 1": (folders[mid], 28, 1),
    }.items():
        got = measured(_worker("build", root, size, ch, store), env)
        out["build"][name] = {**got, **got["result"]}
        print(name, "build", got, flush=True)
    return out


def measure_epoch(store, folders, colour, sizes, seconds, env) -> dict:
    """Two rounds, the feeds alternating, so other load on the machine hits both alike."""
    out = {"epoch": {}}
    for size in (28, 128):
        for round_ in range(2):
            for feed in ("resident", "streamed"):
                cmd = _worker("epoch", folders[sizes[1]], size, 1, store, feed, seconds)
                out["epoch"][f"{size}/{feed}/{round_}"] = got = measured(cmd, env)
                print(size, feed, got, flush=True)
    return out


def measure_flat(store, folders, colour, sizes, seconds, env) -> dict:
    out = {"flat": {}, "ddp": {}}
    big = sizes[-1]
    for n in sizes:
        cmd = _worker("epoch", folders[n], 128, 1, store, "streamed", seconds)
        out["flat"][f"{n}/streamed"] = got = measured(cmd, env)
        print("flat", n, got, flush=True)
    cmd = _worker("epoch", folders[big], 128, 1, store, "resident", seconds)
    out["flat"][f"{big}/resident"] = got = measured(cmd, env)
    print("flat resident", big, got, flush=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    for n in (sizes[0], big):
        cmd = torchrun + _worker("epoch", folders[n], 128, 1, store, "streamed", seconds)[1:]
        out["ddp"][str(n)] = got = measured(cmd, env)
        print("ddp", n, got, flush=True)
    return out


def measure_train_py(store, folders, colour, sizes, seconds, env) -> dict:
    run_dir = store.parent / "train_py_run"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [
        sys.executable, str(REPO / "train.py"), "dataset=image_folder", f"dataset.root={colour}",
        "dataset.size=224", "dataset.channels=3", f"dataset.store_dir={store}", "backbone=smallcnn",
        "backbone.width=8", "augmentation=none", "trainer.epochs=1", "trainer.batch_size=32",
        "trainer.eval_batch_size=64", "trainer.feed=streamed", "trainer.precision=fp32",
        "trainer.online_probe=false", "label_frac=0.1", "cache.enabled=false",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    got = measured(cmd, env)
    return {"train_py": {**got, "results": json.loads((run_dir / "results.json").read_text())}}


def _rate(got: dict) -> float:
    return got["result"]["images_per_s"]


def report(results: dict, sizes: tuple[int, ...]) -> None:
    build = [
        [name, r["n"], f"{r['bytes'] / 1e9:.2f}", f"{r['seconds']:.0f}", max(r["peak_anon_mib"])]
        for name, r in results["build"].items()
    ]
    print(table(build, ["store build", "images", "store GB", "seconds", "peak anon MiB"]))
    rows = []
    for size in (28, 128):
        runs = {
            f: [results["epoch"][f"{size}/{f}/{k}"] for k in range(2)]
            for f in ("resident", "streamed")
        }
        rate = {f: statistics.mean(_rate(g) for g in runs[f]) for f in runs}
        anon = {f: max(max(g["peak_anon_mib"]) for g in runs[f]) for f in runs}
        rows.append([f"{size} px, {sizes[1]} images", f"{rate['resident']:.0f}", f"{rate['streamed']:.0f}",
                     f"{rate['streamed'] / rate['resident']:.2f}x", anon["resident"], anon["streamed"]])  # fmt: skip
    print(table(rows, ["SimCLR epoch", "resident img/s", "streamed img/s", "streamed / resident",
                       "resident anon MiB", "streamed anon MiB"]))  # fmt: skip
    flat = [[f"{n} (streamed)", max(results["flat"][f"{n}/streamed"]["peak_anon_mib"]),
             results["ddp"][str(n)]["peak_anon_mib"] if str(n) in results["ddp"] else "–"] for n in sizes]  # fmt: skip
    big = sizes[-1]
    flat.append(
        [f"{big} (resident)", max(results["flat"][f"{big}/resident"]["peak_anon_mib"]), "–"]
    )
    print(
        table(flat, ["N at 128 px", "1 process: peak anon MiB", "torchrun x2: peak anon MiB each"])
    )
    first = max(results["flat"][f"{sizes[0]}/streamed"]["peak_anon_mib"])
    last = max(results["flat"][f"{big}/streamed"]["peak_anon_mib"])
    ddp = {n: max(results["ddp"][str(n)]["peak_anon_mib"]) for n in (sizes[0], big)}
    print(f"streamed anonymous memory, {sizes[0]} -> {big} images: {last / first - 1:+.1%} "
          f"(one process), {ddp[big] / ddp[sizes[0]] - 1:+.1%} (torchrun, larger process)")  # fmt: skip
    train = results["train_py"]
    store_gb = next(r["bytes"] for k, r in results["build"].items() if "224" in k) / 1e9
    print(f"train.py, image_folder of {sizes[1]} RGB images at 224 px ({store_gb:.2f} GB store), "
          f"trainer.feed=streamed: peak anon {max(train['peak_anon_mib'])} MiB, "
          f"{train['seconds']:.0f} s, test linear AUROC {train['results'].get('test/linear/auroc'):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
