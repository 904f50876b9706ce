"""A tiny RTSP server for the stream tests: GStreamer's rtsp-server through PyGObject, run with the SYSTEM python3
(Debian's python3-gi and gir1.2-gst-rtsp-server-1.0; a virtual environment's python cannot import gi).

    /usr/bin/python3 tests/rtsp_server.py --port 0 --max-seconds 60 [--stall-after 2 --stall-for 3]

Serves ``rtsp://127.0.0.1:PORT/test``: a moving test pattern, 64x48 MJPEG at ``--fps`` over RTP (RFC 2435; FFmpeg,
and so OpenCV's FFmpeg backend, reads it). Binds 127.0.0.1 only. Prints ``READY <port>`` once it listens and ends by
itself after ``--max-seconds``. ``--stall-after S``: S seconds after a client's stream starts, frames stop (a valve
drops them) while the session stays open (RTSP/RTCP alive: a camera that hangs without closing); ``--stall-for``
seconds later they flow again (0: never). Not part of the package: stdlib + gi only.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--stall-after", type=float, default=0.0)
    ap.add_argument("--stall-for", type=float, default=0.0)
    a = ap.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=64,height=48,framerate=%d/1 ! "
                       "valve name=valve drop=false ! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )" % a.fps)
    factory.set_shared(True)

    def on_configure(_factory, media):
        valve = media.get_element().get_by_name("valve")
        if a.stall_after > 0 and valve is not None:
            def stall():
                valve.set_property("drop", True)
                print("STALLED", flush=True)
                if a.stall_for > 0:
                    GLib.timeout_add(int(a.stall_for * 1000), resume)
                return False

            def resume():
                valve.set_property("drop", False)
                print("RESUMED", flush=True)
                return False

            GLib.timeout_add(int(a.stall_after * 1000), stall)

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print("cannot listen on 127.0.0.1:%d" % a.port, file=sys.stderr, flush=True)
        return 1
    print("READY %d" % server.get_bound_port(), flush=True)
    GLib.timeout_add(int(a.max_seconds * 1000), loop.quit)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
