"""Plan, dispatch and resume the Lee & Ryu (2022) STZ-prediction campaign."""

__version__ = "0.1.0"
