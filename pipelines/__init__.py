"""DVC stages of the Dspike reproduction: one module per stage, run as ``python -m``."""
