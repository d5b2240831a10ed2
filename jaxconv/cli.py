"""The ``jaxconv`` command line (also ``python -m jaxconv``).

jaxconv train      train LeNet on Fashion-MNIST (defaults: the book's recipe)
jaxconv summary    LeNet's layer-by-layer output shapes and parameter counts
jaxconv demo       the chapter's worked examples through both implementations
jaxconv experiment the chapter's experiments with figures (NAME or all)
jaxconv bench      every convolution implementation timed on standard (or your) layer shapes
jaxconv tune       time auto's candidates for LeNet's steps (or your layers) here; auto picks the winners

Every command first makes glibc's malloc keep freed memory for reuse (``jaxconv.host_memory``);
``JAXCONV_TUNE_MALLOC=0`` leaves it alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jaxconv.impls import IMPL_CHOICES


def _add_train(sub: argparse._SubParsersAction) -> None:
    """``jaxconv train``: one flag per :class:`~jaxconv.train.TrainConfig` field, its help and choices read
    from the config, so a new field is a new flag."""
    import typing

    from jaxconv.train import TrainConfig
    from jaxconv.train.config import CHOICES

    p = sub.add_parser("train", help="train LeNet on Fashion-MNIST (default: the book's recipe)")
    groups = {"scale-out": p.add_argument_group("scale-out", "data parallelism over devices and hosts; "
                                                "docs/guide/scaling.md")}  # fmt: skip
    hints, defaults = typing.get_type_hints(TrainConfig), TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        meta, default = field.metadata, getattr(defaults, field.name)
        where = groups.get(meta.get("group", ""), p)
        flag, help_ = (
            meta.get("flag", "--" + field.name.replace("_", "-")),
            meta.get("cli_help", meta["help"]),
        )
        if isinstance(default, bool):  # a flag that sets the field to the other value
            where.add_argument(
                flag, dest=field.name, action="store_false" if default else "store_true", help=help_
            )
            continue
        kind = next(
            t for t in typing.get_args(hints[field.name]) or (hints[field.name],) if t is not type(None)
        )
        choices = CHOICES[field.name]() if field.name in CHOICES else None
        where.add_argument(flag, dest=field.name, type=kind, choices=choices, help=help_,
                           default=meta.get("cli_default", default))  # fmt: skip
    dist = groups["scale-out"]
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
    from jaxconv.experiments import NAMES
    from jaxconv.nn.lenet import VARIANTS

    s = sub.add_parser("summary", help="LeNet's layer-by-layer shapes and parameter counts")
    s.add_argument("--variant", choices=VARIANTS, default="classic")
    s.add_argument("--batch-norm", action="store_true")
    s.add_argument("--api", choices=("linen", "nnx"), default="linen", help="the Flax API of the model")
    sub.add_parser("demo", help="print the chapter's worked examples through both implementations")
    e = sub.add_parser("experiment", help="run one of the chapter's experiments (or 'all')")
    e.add_argument("name", help=f"{', '.join(NAMES)}, or all")
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
    b.add_argument(
        "--tune", action="store_true",
        help="first tune auto's picks for these layers (jaxconv tune); auto then runs the winners",
    )  # fmt: skip
    t = sub.add_parser("tune", help="measure which impl runs each of LeNet's (or your) layers fastest here; "
                                     "impl='auto' picks the winners from then on")  # fmt: skip
    t.add_argument(
        "--variant", choices=VARIANTS, default="classic", help="the LeNet recipe whose steps to tune"
    )
    t.add_argument("--batch-norm", action="store_true", help="the recipe with batch norm (modern only)")
    t.add_argument("--layout", choices=("NCHW", "NHWC"), default="NHWC")
    t.add_argument("--batch-size", type=int, default=256, help="training batch size")
    t.add_argument(
        "--shape", action="append", default=None, metavar="N,C,O,H,K[,P[,S]]",
        help="tune this layer (forward+backward, as jaxconv bench's --shape) instead (repeatable)",
    )  # fmt: skip
    t.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per call (median)")
    t.add_argument(
        "--out", default=None, metavar="TABLE.json",
        help="the tuning table to write (default: $JAXCONV_TUNING_CACHE or ~/.cache/jaxconv/tuning.json)",
    )  # fmt: skip
    t.add_argument("--retune", action="store_true", help="measure calls the table already holds again")
    return parser


def _tune(args: argparse.Namespace) -> int:
    from jaxconv.bench import ConvShape
    from jaxconv.train import TrainConfig
    from jaxconv.train.steps import step_compiler_options
    from jaxconv.train.tune import tune_steps
    from jaxconv.tuning import calls
    from jaxconv.tuning.table import TableError
    from jaxconv.tuning.tuner import Tuner

    try:
        config = TrainConfig(variant=args.variant, batch_norm=args.batch_norm, layout=args.layout,
                             batch_size=args.batch_size)  # fmt: skip
        tuner = Tuner(rounds=args.rounds, table=args.out, retune=args.retune,
                      compiler_options=None if args.shape else step_compiler_options(config))  # fmt: skip
        if args.shape:
            specs = [ConvShape.parse(s).spec(args.layout) for s in args.shape]
            report = tuner.tune_calls(
                {calls.Call("conv", spec, "auto", "forward+backward"): 1 for spec in specs}
            )
        else:
            report = tune_steps(config, tuner=tuner)
    except (TableError, ValueError) as e:
        print(f"jaxconv tune: {e}", file=sys.stderr)
        return 1
    print(report)
    return 0


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
    result = bench.run(
        shapes, impls, args.repeats, cpu_compiler_options=not args.xla_defaults, tune=args.tune
    )
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
    if args.command == "tune":
        return _tune(args)
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
