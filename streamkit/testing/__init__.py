"""Test support: virtual-time loop and the replay harness."""

from streamkit.testing.virtual import new_virtual_loop, run_virtual

__all__ = ["new_virtual_loop", "run_virtual"]
