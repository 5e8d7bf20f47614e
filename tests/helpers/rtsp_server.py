"""A small real RTSP server on loopback for the reconnect tests: RTSP 1.0 over TCP (RFC 2326), serving an MPEG-TS
recording as RTP payload type 33 (MP2T, RFC 2250) interleaved on the RTSP connection, looped for as long as the
client plays. ``stop()`` closes the listening socket and every connection at once, as a server that crashes;
``RtspServer(port=the old one)`` is the restarted server. UDP transport is answered 461, so a client falls back
to TCP (FFmpeg does). No package here ships an RTSP server (ffmpeg's listen mode only receives, the GStreamer
server needs ~200 Debian packages), so the protocol's few requests are served by hand: just enough for
FFmpeg's client, nothing edgevid itself uses."""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import List

TS_PACKET = 188
PER_RTP = 7  # TS packets per RTP packet (1316 bytes: one Ethernet frame)
CLOCK = 90000


class RtspServer:
    def __init__(self, ts: bytes, port: int = 0, packets_per_s: float = 400.0):
        self.ts = ts[: len(ts) - len(ts) % TS_PACKET]
        self.interval = 1.0 / packets_per_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.url = "rtsp://127.0.0.1:%d/live" % self.port
        self.connections: List[socket.socket] = []
        self.plays = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for s in [self.sock] + self.connections:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    # serving --------------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                self._answer(conn, head.decode("latin-1"))
        except OSError:
            return

    def _answer(self, conn: socket.socket, request: str) -> None:
        lines = request.split("\r\n")
        method = lines[0].split(" ")[0]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        cseq = headers.get("cseq", "0")
        if method == "DESCRIBE":
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=edgevid test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   "m=video 0 RTP/AVP 33\r\na=rtpmap:33 MP2T/90000\r\na=control:track0\r\n")
            self._reply(conn, cseq, ["Content-Base: %s/" % self.url, "Content-Type: application/sdp"], sdp)
        elif method == "SETUP":
            if "interleaved" not in headers.get("transport", ""):
                self._reply(conn, cseq, [], status="461 Unsupported Transport")
            else:
                self._reply(conn, cseq, ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 4711"])
        elif method == "PLAY":
            self._reply(conn, cseq, ["Session: 4711", "Range: npt=0.000-"])
            self.plays += 1
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()
        else:  # OPTIONS, GET_PARAMETER (keep-alive), TEARDOWN
            self._reply(conn, cseq, ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"])

    @staticmethod
    def _reply(conn: socket.socket, cseq: str, headers: List[str], body: str = "", status: str = "200 OK") -> None:
        head = ["RTSP/1.0 " + status, "CSeq: " + cseq] + headers
        if body:
            head.append("Content-Length: %d" % len(body))
        conn.sendall(("\r\n".join(head) + "\r\n\r\n" + body).encode("latin-1"))

    def _stream(self, conn: socket.socket) -> None:
        chunk, seq, start = TS_PACKET * PER_RTP, 0, time.monotonic()
        try:
            while not self._stop.is_set():
                for offset in range(0, len(self.ts), chunk):
                    stamp = int((time.monotonic() - start) * CLOCK) & 0xFFFFFFFF
                    rtp = struct.pack("!BBHII", 0x80, 33, seq & 0xFFFF, stamp, 0x45564944) + self.ts[offset:offset + chunk]
                    conn.sendall(b"$\x00" + struct.pack("!H", len(rtp)) + rtp)
                    seq += 1
                    if self._stop.wait(self.interval):
                        return
        except OSError:
            return


