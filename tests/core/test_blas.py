"""single_threaded_blas: numpy's BLAS on one thread inside, the old setting back after."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from streamkit.core.blas import single_threaded_blas

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_inside_blas_runs_on_one_thread_and_the_setting_comes_back() -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # loads the BLAS library
    before = _blas_threads()
    if not before or max(before) == 1:
        pytest.skip("no multi-threaded BLAS here to limit")
    with single_threaded_blas():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_overlapping_holders_keep_the_limit_until_the_last_one_leaves() -> None:
    before = _blas_threads()
    if not before or max(before) == 1:
        pytest.skip("no multi-threaded BLAS here to limit")
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with single_threaded_blas():
            entered.set()
            release.wait(5)

    other = threading.Thread(target=hold)
    other.start()
    entered.wait(5)
    with single_threaded_blas():
        pass
    assert _blas_threads() == [1] * len(before)  # the other holder is still inside
    release.set()
    other.join(5)
    assert _blas_threads() == before
