"""``bertkit demo``: the whole system on real data in one command — fetch, tokenize, pretrain,
fine-tune, inspect — ending in ``report.html``. See :mod:`bertkit.demo.pipeline`."""

from bertkit.demo.pipeline import DemoResult, DemoSettings, run_demo

__all__ = ["DemoResult", "DemoSettings", "run_demo"]
