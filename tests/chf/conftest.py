"""Fixtures of the CHF tests (the in-process NF lives in ``tests.chf.harness``)."""

from tests.chf.harness import nf

__all__ = ["nf"]
