"""Measuring on a shared machine, for the bench's race and the tuner alike.

* :mod:`jaxconv.timing.rounds`: the order contestants run in, round by round, and per-round speed-ups;
* :mod:`jaxconv.timing.memory_budget`: whether a compiled contestant fits in the memory free.
"""
