#!/usr/bin/python3
"""The tiny server every sandbox pod runs (Python standard library only).

It answers on each TCP and UDP port it is given with one line:

    <pod name> <client ip>:<client port> <tcp|udp>/<local port> <what the client sent>

TCP: for every line the client sends, one answer line, until the client
closes, so one connection can carry many exchanges (the takeover test keeps
one open across the handover). UDP: one answer datagram per datagram.

    podserver.py --name web-1 --tcp 80,8080 --udp 80 [--ready-file F]

The ready file is written once every port is bound. SIGTERM ends it.
"""

import argparse
import os
import signal
import socket
import socketserver
import sys
import threading

NAME = "?"


class TCPHandler(socketserver.StreamRequestHandler):
    timeout = 120  # an idle connection is dropped after this

    def handle(self):
        host, port = self.client_address[:2]
        local = self.request.getsockname()[1]
        while True:
            try:
                line = self.rfile.readline(4096)
            except OSError:
                return
            if not line:
                return
            msg = line.decode(errors="replace").strip()
            out = "%s %s:%d tcp/%d %s\n" % (NAME, host, port, local, msg)
            try:
                self.wfile.write(out.encode())
                self.wfile.flush()
            except OSError:
                return


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256


def udp_loop(sock):
    local = sock.getsockname()[1]
    while True:
        data, (host, port) = sock.recvfrom(4096)
        msg = data.decode(errors="replace").strip()
        out = "%s %s:%d udp/%d %s\n" % (NAME, host, port, local, msg)
        try:
            sock.sendto(out.encode(), (host, port))
        except OSError:
            pass


def ports(s):
    return [int(x) for x in s.split(",") if x]


def main():
    global NAME
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--tcp", type=ports, default=[])
    ap.add_argument("--udp", type=ports, default=[])
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    NAME = a.name
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for p in a.tcp:
        srv = TCPServer(("0.0.0.0", p), TCPHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    for p in a.udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", p))
        threading.Thread(target=udp_loop, args=(s,), daemon=True).start()
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, a.ready_file)
    print("%s: serving tcp %s udp %s" % (NAME, a.tcp, a.udp), file=sys.stderr, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
