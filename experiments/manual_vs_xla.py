"""The reader's one-screen race: the same layer and the same LeNet through every ``impl``.

``python -m experiments.manual_vs_xla [--out DIR] [--fast]``; the code is ``jaxconv.experiments.manual_vs_xla``.
"""

from jaxconv.experiments import manual_vs_xla
from jaxconv.experiments.common import main

if __name__ == "__main__":
    raise SystemExit(main("manual_vs_xla", manual_vs_xla.run))
