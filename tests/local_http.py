"""A file server on 127.0.0.1 for download tests: Google Drive's URL scheme (``/uc?export=download&id=``),
its virus-scan confirm page, HTTP Range requests, and connections cut on purpose. No internet."""
import http.server
import threading
import urllib.parse


class LocalDrive:
    """``files[id] = bytes`` are served at ``drive_url``; ids in ``confirm`` first get a confirm page
    whose form leads to ``/download``; ``cut[id] = n`` drops the connection after n bytes, once.
    ``requests`` records (path, id, Range header) of every request."""

    def __init__(self):
        self.files, self.confirm, self.cut, self.requests = {}, set(), {}, []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def drive_url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}/uc"

    def requests_for(self, file_id):
        return [r for r in self.requests if r[1] == file_id]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self):
        drive = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                file_id = query.get("id")
                drive.requests.append((url.path, file_id, self.headers.get("Range")))
                if file_id not in drive.files or url.path not in ("/uc", "/download"):
                    self.send_error(404)
                elif url.path == "/uc" and file_id in drive.confirm:
                    self._confirm_page(file_id)
                elif url.path == "/download" and query.get("confirm") != "t":
                    self.send_error(403)
                else:
                    self._send_file(file_id)

            def _confirm_page(self, file_id):
                page = ("<html><body><p>Google Drive can't scan this file for viruses.</p>"
                        '<form id="download-form" action="/download" method="get">'
                        '<input type="submit" value="Download anyway">'
                        f'<input type="hidden" name="id" value="{file_id}">'
                        '<input type="hidden" name="export" value="download">'
                        '<input type="hidden" name="confirm" value="t"></form></body></html>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _send_file(self, file_id):
                data = drive.files[file_id]
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][len("bytes="):].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                cut = drive.cut.pop(file_id, None)
                self.wfile.write(data[start:] if cut is None else data[start:start + cut])
                self.close_connection = True

        return Handler
