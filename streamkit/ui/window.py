"""The OpenCV window of the desktop demo: show rendered frames, read keys.

``cv2.imshow`` / ``cv2.waitKey`` run on the event loop's thread (HighGUI wants one thread);
``poll`` blocks for about a millisecond. :func:`display_available` says whether a window can
be opened at all (an X display or a non-Linux desktop).
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["WindowView", "display_available"]


def display_available() -> bool:
    """True when a window can be shown (``DISPLAY``/``WAYLAND_DISPLAY`` set on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowView:
    """One OpenCV window at the top-left corner of the screen."""

    def __init__(self, title: str = "streamkit demo") -> None:
        self.title = title
        self._open = False

    def open(self) -> None:
        # GUI_NORMAL: no Qt toolbar or status bar above and below the image
        cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        cv2.moveWindow(self.title, 0, 0)
        self._open = True

    def show(self, image: npt.NDArray[np.uint8]) -> None:
        cv2.imshow(self.title, image)

    def poll(self, wait_ms: int = 1) -> str | None:
        """The key pressed (as a character), or None; also pumps the window's events."""
        code = cv2.waitKey(max(1, wait_ms)) & 0xFF
        return None if code == 0xFF else chr(code)

    def closed_by_user(self) -> bool:
        """True when the window was closed with the window manager's button."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._open:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._open = False
