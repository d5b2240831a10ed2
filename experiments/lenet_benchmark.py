"""LeNet on Fashion-MNIST, 10 epochs: the book's recipe and the modern one, with PyTorch beside them.

``python -m experiments.lenet_benchmark --help``; the code is ``jaxconv.experiments.lenet_benchmark``.
"""

from jaxconv.experiments.lenet_benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
