"""A policy registry gone bad, over TLS on 127.0.0.1, for the gate's bounded reads.

Usage: hostile_registry.py PORT CERT KEY MODE, MODE one of
  endless  every GET answers a manifest that never ends (no declared length)
  huge     every answer declares a 400 MiB body
  token    every registry request is challenged; the token endpoint never stops
  trickle  every GET answers one byte per second
Prints "ready" once listening.
"""
import http.server
import socket
import ssl
import sys
import time

port, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
CHUNK = b"{" + b" " * 65535


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def endless(self, content_type, pause=0.0, chunk=CHUNK):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while True:
                self.wfile.write(chunk)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:
            pass

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(400 << 20))
        self.end_headers()

    def do_GET(self):
        manifest = "application/vnd.oci.image.manifest.v1+json"
        if mode == "token":
            if self.path.startswith("/token"):
                return self.endless("application/json")
            self.send_response(401)
            realm = f'Bearer realm="https://127.0.0.1:{port}/token",service="hostile"'
            self.send_header("WWW-Authenticate", realm)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if mode == "huge":
            self.do_HEAD()
            try:
                self.wfile.write(CHUNK)
            except OSError:
                pass
            return
        if mode == "trickle":
            return self.endless(manifest, pause=1.0, chunk=b" ")
        return self.endless(manifest)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
