"""An HTTP server of one folder's files for the tests of images read by URL: it answers range
requests (206) as servers do, and counts the bytes it sends. Usage: range_server.py FOLDER MODE
COUNT [DELAY_MS] where MODE is "ranges" (a well-behaved server), "whole" (one that ignores Range and sends
the whole file) or "changing" (one whose file changes after its first answer: a new ETag).
Prints its port on the first line of stdout; after each answer, the file COUNT holds the bytes
of files sent so far. DELAY_MS holds each answer back that long, as a distant server's
round trip would (the benchmark's)."""
import http.server
import os
import re
import sys
import threading
import time

folder, mode, count = sys.argv[1:4]
delay = int(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0
served = 0
answers = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global served, answers
        path = os.path.join(folder, self.path.lstrip("/"))
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        time.sleep(delay)
        with lock:
            answers += 1
            version = answers if mode == "changing" and answers > 1 else 0
        start, end = 0, size - 1
        wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if wanted and mode != "whole":
            start, end = int(wanted[1]), min(int(wanted[2]), size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("ETag", f'"v{version}"')
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left:
                data = f.read(min(left, 1 << 20))
                self.wfile.write(data)
                left -= len(data)
        with lock:
            served += end - start + 1
            # Whole or not at all, for a reader that looks at any moment.
            with open(count + ".new", "w") as f:
                f.write(str(served))
            os.replace(count + ".new", count)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that closes a kept-alive connection is not an error worth a traceback.
        pass


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
