#!/usr/bin/python3
"""A TCP relay: accept on LISTEN (an address on the sandbox's node network),
forward each connection to TARGET (the test API server on the control-plane
namespace's loopback). Python standard library only.

The test API server binds loopback only. The sandbox runs it in a
"control-plane" namespace and runs this relay in the same namespace, listening
on the control plane's node-network address, so the daemons in the node
namespaces reach the API server over the node network as a real kube-proxy
reaches kube-apiserver. Long-lived watch streams are copied both ways as they
come; a half-close is passed on; either side closing ends the pair.

    relay.py --listen 192.0.2.2:6443 --target 127.0.0.1:PORT [--ready-file F]
"""

import argparse
import os
import signal
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_one(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError as e:
        print("relay: cannot reach %s:%d: %s" % (target[0], target[1], e), file=sys.stderr)
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    t.start()
    pump(client, upstream)
    t.join()
    client.close()
    upstream.close()


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, type=hostport)
    ap.add_argument("--target", required=True, type=hostport)
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(a.listen)
    ls.listen(128)
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%s:%d\n" % a.listen)
        os.rename(tmp, a.ready_file)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_one, args=(c, a.target), daemon=True).start()


if __name__ == "__main__":
    main()
