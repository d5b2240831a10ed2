"""The ``jaxconv`` command line (also ``python -m jaxconv``).

jaxconv train      train LeNet on Fashion-MNIST (defaults: the book's recipe)
jaxconv summary    LeNet's layer-by-layer output shapes and parameter counts
jaxconv demo       the chapter's worked examples through both implementations
jaxconv experiment the chapter's experiments with figures (NAME or all)
jaxconv bench      every convolution implementation timed on standard (or your) layer shapes

Every command first makes glibc's malloc keep freed memory for reuse (``jaxconv.host_memory``);
``JAXCONV_TUNE_MALLOC=0`` leaves it alone.
"""

from __future__ import annotations

import argparse
import sys

from jaxconv._checks import LAYOUTS
from jaxconv.impls import IMPL_CHOICES


def _add_train(sub: argparse._SubParsersAction) -> None:
    from jaxconv.nn.lenet import VARIANTS
    from jaxconv.train import OPTIMIZERS, SCHEDULES, TrainConfig
    from jaxconv.train.config import APIS

    d = TrainConfig()
    p = sub.add_parser("train", help="train LeNet on Fashion-MNIST (default: the book's recipe)")
    p.add_argument("--variant", choices=VARIANTS, default=d.variant)
    p.add_argument("--impl", choices=IMPL_CHOICES, default=d.impl, help="convolution implementation")
    p.add_argument("--layout", choices=LAYOUTS, default=d.layout)
    p.add_argument("--batch-norm", action="store_true", help="batch norm (modern variant only)")
    p.add_argument(
        "--api", choices=APIS, default=d.api, help="the Flax API of the model (same loop, same weights)"
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help="learning-rate schedule")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--data-dir", default=None, help="folder holding the four Fashion-MNIST .gz files")
    p.add_argument("--out", default=None, help="output folder (default runs/lenet-VARIANT)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.msgpack")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--steps-per-dispatch", type=int, default=d.steps_per_dispatch,
                   help="training steps per dispatch (a lax.scan; for accelerators)")  # fmt: skip
    p.add_argument("--xla-defaults", action="store_true",
                   help="compile the steps with XLA's default options, not jaxconv's CPU ones")  # fmt: skip
    dist = p.add_argument_group("scale-out", "data parallelism over devices and hosts; docs/guide/scaling.md")
    dist.add_argument("--devices", type=int, default=None,
                      help="train data-parallel over this many devices (default: all JAX sees)")  # fmt: skip
    dist.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                      help="multi-host: process 0's address (or 'auto' on TPU pods / SLURM)")  # fmt: skip
    dist.add_argument("--num-processes", type=int, default=None, help="multi-host: number of processes")
    dist.add_argument("--process-id", type=int, default=None, help="multi-host: this process's rank")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxconv", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    from jaxconv.nn.lenet import VARIANTS

    s = sub.add_parser("summary", help="LeNet's layer-by-layer shapes and parameter counts")
    s.add_argument("--variant", choices=VARIANTS, default="classic")
    s.add_argument("--batch-norm", action="store_true")
    s.add_argument("--api", choices=("linen", "nnx"), default="linen", help="the Flax API of the model")
    sub.add_parser("demo", help="print the chapter's worked examples through both implementations")
    e = sub.add_parser("experiment", help="run one of the chapter's experiments (or 'all')")
    e.add_argument("name", help="why_conv, conv_layer, padding_stride, channels, pooling, receptive_field, "
                   "manual_vs_xla, lenet, drop_in, or all")  # fmt: skip
    e.add_argument("--out", default="runs/experiments", help="folder for figures and JSON")
    e.add_argument("--fast", action="store_true", help="smaller settings")
    b = sub.add_parser("bench", help="time every convolution implementation (and PyTorch if installed)")
    b.add_argument("--shape", action="append", default=None, metavar="N,C,O,H,K[,P[,S]]",
                   help="a layer to time instead of the standard set (repeatable)")  # fmt: skip
    b.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join((*IMPL_CHOICES[1:], 'auto', 'torch'))}",
    )
    b.add_argument("--repeats", type=int, default=5, help="timed runs per implementation (median)")
    b.add_argument("--out", default="runs/bench", help="folder for bench.json, bench.csv, bench.png")
    b.add_argument("--xla-defaults", action="store_true",
                   help="compile the JAX contestants with XLA's default options, not jaxconv's")  # fmt: skip
    return parser


def _bench(args: argparse.Namespace) -> int:
    from jaxconv import bench

    try:
        shapes = [bench.ConvShape.parse(s) for s in args.shape] if args.shape else bench.STANDARD_SHAPES
        impls = args.impls.split(",") if args.impls else None
        known = {impl for _, impl, _ in bench.candidates()} | {"torch"}
        if impls and not set(impls) <= known:
            raise ValueError(f"--impls must name some of {sorted(known)}, got {args.impls!r}")
        if args.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    except ValueError as e:
        print(f"jaxconv bench: {e}", file=sys.stderr)
        return 1
    result = bench.run(shapes, impls, args.repeats, cpu_compiler_options=not args.xla_defaults)
    print(bench.format_table(result))
    paths = bench.write(result, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _train(args: argparse.Namespace) -> int:
    from jaxconv.train import DivergenceError, TrainConfig, distributed, train_and_evaluate
    from jaxconv.train.data import DataNotFoundError

    options = vars(args).copy()
    del options["command"]
    try:  # before anything starts a JAX backend
        distributed.initialize(
            options.pop("coordinator"), options.pop("num_processes"), options.pop("process_id")
        )
    except ValueError as e:
        print(f"jaxconv train: {e}", file=sys.stderr)
        return 1
    options["progress"] = not options.pop("no_progress")
    options["cpu_compiler_options"] = not options.pop("xla_defaults")
    options["out"] = options["out"] or f"runs/lenet-{args.variant}"
    try:
        config = TrainConfig(**options)
        history = train_and_evaluate(config)
    except (DataNotFoundError, DivergenceError, FileNotFoundError, ValueError) as e:
        print(f"jaxconv train: {e}", file=sys.stderr)
        return 1
    if history:
        last = history[-1]
        print(
            f"done: epoch {last['epoch']}, train loss {last['train_loss']:.3f}, "
            f"train acc {last['train_acc']:.3f}, "
            f"test acc {last['test_acc']:.3f}, {last['images_per_second']:,.0f} img/s"
        )
    print(f"wrote {config.out}/curves.png, {config.out}/history.json, {config.out}/checkpoint.msgpack")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from jaxconv import host_memory

    try:  # large XLA buffers reuse freed memory instead of faulting in fresh pages every step
        host_memory.tune_from_env()
    except ValueError as e:
        print(f"jaxconv: {e}", file=sys.stderr)
        return 1
    if args.command == "train":
        return _train(args)
    if args.command == "summary":
        from jaxconv.nn import LeNet, format_summary, summary

        if args.api == "nnx":
            from flax import nnx

            from jaxconv import nnx as jnnx

            model = jnnx.LeNet(args.variant, batch_norm=args.batch_norm, rngs=nnx.Rngs(0))
            print(format_summary(jnnx.summary(model)))
        else:
            print(format_summary(summary(LeNet(args.variant, batch_norm=args.batch_norm))))
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "experiment":
        from jaxconv import experiments

        try:
            experiments.run(
                args.name, args.out if args.name == "all" else f"{args.out}/{args.name}", args.fast
            )
        except ValueError as e:
            print(f"jaxconv experiment: {e}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}")
        return 0
    from jaxconv import demo

    return demo.main()


if __name__ == "__main__":
    sys.exit(main())
