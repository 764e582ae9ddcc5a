"""Test support: virtual-time loop and the replay harness."""
