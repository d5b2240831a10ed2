"""LeNet training steps, raced interleaved: jaxconv's defaults (Linen and NNX), plain XLA and PyTorch.

``python -m experiments.lenet_step_race --help``; the code is ``jaxconv.experiments.lenet_step_race``.
"""

from jaxconv.experiments.lenet_step_race import main

if __name__ == "__main__":
    raise SystemExit(main())
