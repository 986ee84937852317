"""SpectraMind V50 run-side package (kept import-light: the boot shim and `spectramind test` load it)."""

__version__ = "0.5.0"
