"""Fixtures of the PCF tests (the in-process NF lives in ``tests.pcf.harness``)."""

from tests.pcf.harness import nf

__all__ = ["nf"]
