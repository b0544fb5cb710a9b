"""One process of a multi-process `PixelReadout`: `python -m facetwin.sim.pixel_worker FD`.

FD is this end of a socket pair to the readout. The first message holds the renderer and engine
settings; each later one a (B, nq) batch of poses, answered with (expressions, render s, landmarker s, CPU s);
None ends the worker. Failures go back as ("error", text), so the readout raises them with their words.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def serve(conn: Connection) -> None:
    import cv2

    from facetwin.sim.pixel_readout import LocalReadout

    cv2.setNumThreads(1)  # as the rasteriser: the workers already fill the cores (the litert engine's crops)
    settings = conn.recv()
    try:
        local = LocalReadout(*settings)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    try:
        while (qpos := conn.recv()) is not None:
            try:
                reply = ("ok", local.read(qpos))
            except Exception as exc:
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (EOFError, OSError):  # the readout went away without saying goodbye
        pass
    finally:
        local.close()


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
