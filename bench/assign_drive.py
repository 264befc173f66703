#!/usr/bin/python3
"""assign_drive.py -- a fixed number of assignment requests for
bench/assign_callgrind.sh: CONNS keep-alive connections, ROUNDS rounds; in
each round every connection sends one request, then every answer is read
(so the server's poll loop sees up to CONNS ready connections per wake-up,
as under wrk). A fixed count makes the server's instruction counts
(callgrind) per request comparable between builds, whatever the load on
the machine.

usage: assign_drive.py PORT TOKEN KIND CONNS ROUNDS [MODE]
  KIND: get | batch | ofrep
  MODE: burst (default: every connection sends, then every answer is
        read) | serial (one request in flight at a time, the connections
        taking turns: each poll wake-up finds one ready connection among
        CONNS open ones, as at low load)
Exits 1 on any answer other than 200."""
import socket
import sys

BATCH = b'{"unit":"user-4242","attributes":{"country":"de","app_version":"3.2.1"}}'
OFREP = (b'{"context":{"targetingKey":"user-4242","country":"de",'
         b'"app_version":"3.2.1"}}')


def request(kind, token):
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n"
    if kind == "get":
        return (b"GET /v1/assign?experiment=exp-0&unit=user-4242 HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\n" + auth + b"\r\n")
    path, body = ((b"/v1/assign", BATCH) if kind == "batch" else
                  (b"/ofrep/v1/evaluate/flags/exp-0", OFREP))
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
            b"Content-Type: application/json\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


def read_answer(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("assign_drive: connection closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("assign_drive: connection closed")
        rest += chunk
    if status != b"200":
        raise SystemExit("assign_drive: status %s: %r" % (status, rest[:300]))
    return rest[length:]


def main():
    port, token, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conns, rounds = int(sys.argv[4]), int(sys.argv[5])
    serial = len(sys.argv) > 6 and sys.argv[6] == "serial"
    req = request(kind, token)
    socks = [socket.create_connection(("127.0.0.1", port))
             for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bufs = [b""] * conns
    for _ in range(rounds):
        if serial:
            for i, s in enumerate(socks):
                s.sendall(req)
                bufs[i] = read_answer(s, bufs[i])
            continue
        for s in socks:
            s.sendall(req)
        for i, s in enumerate(socks):
            bufs[i] = read_answer(s, bufs[i])
    for s in socks:
        s.close()


main()
