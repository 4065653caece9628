"""A minimal FastCGI client, to talk to `minihost serve` without nginx."""

import socket
import struct

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def _record(kind: int, request_id: int, content: bytes) -> bytes:
    out = b""
    for start in range(0, max(len(content), 1), 65535):
        chunk = content[start:start + 65535]
        out += struct.pack("!BBHHBx", 1, kind, request_id, len(chunk), 0) + chunk
    return out


def _pair(name: bytes, value: bytes) -> bytes:
    def length(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def begin(params: dict) -> bytes:
    """BEGIN_REQUEST and the PARAMS stream, as nginx opens a request."""
    encoded = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
    return _record(BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0)) + _record(PARAMS, 1, encoded) + _record(PARAMS, 1, b"")


def stdin(content: bytes) -> bytes:
    """Body bytes; empty content is the body's end."""
    return _record(STDIN, 1, content)


def request(sock: socket.socket, method: str, uri: str, headers=None, body: bytes = b"", params_extra=None):
    """Sends one request (`params_extra` adds or replaces FastCGI parameters) and
    returns (status, headers dict, body)."""
    sock.settimeout(30)
    path, _, query = uri.partition("?")
    params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": path, "QUERY_STRING": query,
              "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "fcgi.test", "CONTENT_LENGTH": str(len(body))}
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        params[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    params.update(params_extra or {})
    sock.sendall(begin(params) + (stdin(body) if body else b"") + stdin(b""))
    return read_answer(sock)


def read_answer(sock: socket.socket):
    """Reads STDOUT up to END_REQUEST; returns (status, headers dict, body)."""
    out = b""
    buffer = b""
    while True:
        while len(buffer) < 8:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed before END_REQUEST")
            buffer += data
        _, kind, _, length, padding = struct.unpack("!BBHHB", buffer[:7])
        while len(buffer) < 8 + length + padding:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed mid-record")
            buffer += data
        content, buffer = buffer[8:8 + length], buffer[8 + length + padding:]
        if kind == STDOUT:
            out += content
        elif kind == END_REQUEST:
            break
    head, _, payload = out.partition(b"\r\n\r\n")
    fields = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    status = int(fields.get("status", "200").split()[0])
    return status, fields, payload
