"""A TCP proxy between lrtrack and the test PostgreSQL server that drops a connection around COMMIT.

lrtrack connects to the proxy (`CommitDropper.url`); the proxy passes every byte
through to the server, following the client's side of the wire protocol (message
framing, the SQL of each transaction) and the server's replies to a COMMIT. Armed
with `CommitDropper.arm`, it acts on the COMMIT of each transaction one of whose
statements matches a pattern, taking the next action from that pattern's list:

- ``"after"``: forward the COMMIT, wait for the server's whole reply (CommandComplete
  and ReadyForQuery: the transaction is committed), withhold it and close both
  sockets. The client sees its connection lost with the acknowledgement of a COMMIT
  that went through.
- ``"before"``: close both sockets instead of forwarding the COMMIT; the server rolls
  the transaction back when it sees its client gone.
- ``None``: let that one through.

Every action taken is kept in `CommitDropper.drops` (with the server's CommandComplete tag
for ``"after"``: ``COMMIT`` proves the transaction committed), so a test can check the
drops it asked for really happened. Standard library only, one thread per direction.

psycopg 3 sends BEGIN and COMMIT as simple queries (``Q`` messages, `psycopg`'s
``_exec_command``) and statements with parameters through the extended protocol
(``P`` Parse carries the SQL; a prepared statement is later only named by ``B`` Bind).
The proxy answers an SSL or GSSAPI encryption request itself with "no" so the stream
it reads stays plain, as a server without SSL would.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from dataclasses import dataclass

#: Protocol codes of the untyped requests a client may send before its startup message.
ENCRYPTION_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest


@dataclass(frozen=True)
class Drop:
    """One connection the proxy dropped: ``when`` (``after`` or ``before``), the matching statement,
    and for ``after`` the tag of the server's CommandComplete it withheld (``COMMIT``)."""

    when: str
    statement: str
    tag: str | None = None


class _Closed(Exception):
    """A socket of the pair reached its end (or was closed by the other direction)."""


def _read(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return bytes(data)


def _cstring(body: bytes, start: int = 0) -> tuple[str, int]:
    """The NUL-terminated string at ``start`` and the offset after it."""
    end = body.index(b"\0", start)
    return body[start:end].decode("utf-8", "replace"), end + 1


class CommitDropper:
    """A proxy to the server of ``url`` (a store URL); ``with CommitDropper(url) as proxy:``
    serves until the block ends, then closes every connection it holds."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self._target = make_url(url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        #: The store URL to hand lrtrack: the server's, through the proxy.
        self.url = self._target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        self.drops: list[Drop] = []
        self._lock = threading.Lock()
        self._rules: list[tuple[re.Pattern, list[str | None]]] = []  # see `arm`
        self._sockets: set[socket.socket] = set()

    # -- what a test calls

    def arm(self, pattern: str, actions: list[str | None]) -> None:
        """Act on the COMMIT of the next transactions with a statement matching ``pattern``
        (a regular expression, searched): the first gets ``actions[0]``, and so on; once
        the list is used up, such transactions pass. Several patterns may be armed: a
        transaction takes its action from the first one armed that it matches."""
        assert all(action in ("after", "before", None) for action in actions), actions
        with self._lock:
            self._rules.append((re.compile(pattern), list(actions)))

    def pending(self) -> int:
        """Actions not taken yet."""
        with self._lock:
            return sum(len(actions) for _, actions in self._rules)

    def __enter__(self) -> CommitDropper:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        _close(self._listener)  # shutdown wakes the accepting thread
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    # -- the proxy

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            try:
                server = socket.create_connection((self._target.host, self._target.port))
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, server))
            _Connection(self, client, server).start()

    def _decide(self, statements: list[str]) -> tuple[str | None, str]:
        """The action for a COMMIT ending a transaction of ``statements``, and the statement that matched."""
        with self._lock:
            for pattern, actions in self._rules:
                matched = next((s for s in statements if pattern.search(s)), None)
                if matched is not None:
                    return (actions.pop(0) if actions else None), matched
        return None, ""

    def _dropped(self, drop: Drop, *sockets: socket.socket) -> None:
        with self._lock:
            self.drops.append(drop)
        for sock in sockets:
            _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Connection:
    """One client connection and its server connection: a thread per direction."""

    def __init__(self, proxy: CommitDropper, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.statements: list[str] = []  # the SQL of the transaction in progress
        self.prepared: dict[str, str] = {}  # statement name -> SQL, from Parse
        #: Set (to the matching statement) just before a COMMIT whose reply is to be withheld.
        self.withhold: str | None = None

    def start(self) -> None:
        threading.Thread(target=self._client_to_server, daemon=True).start()
        threading.Thread(target=self._server_to_client, daemon=True).start()

    def _client_to_server(self) -> None:
        try:
            while True:  # untyped: encryption requests, then the startup message
                header = _read(self.client, 4)
                body = _read(self.client, struct.unpack("!I", header)[0] - 4)
                if struct.unpack("!I", body[:4])[0] in ENCRYPTION_REQUESTS:
                    self.client.sendall(b"N")
                    continue
                self.server.sendall(header + body)
                break
            while True:
                kind = _read(self.client, 1)
                header = _read(self.client, 4)
                body = _read(self.client, struct.unpack("!I", header)[0] - 4)
                if kind == b"Q" and _cstring(body)[0].strip().upper() == "COMMIT":
                    if self._commit():
                        return
                else:
                    self._follow(kind, body)
                self.server.sendall(kind + header + body)
        except (_Closed, OSError):
            _close(self.client)
            _close(self.server)

    def _follow(self, kind: bytes, body: bytes) -> None:
        """Note the SQL of the transaction in progress."""
        if kind == b"Q":
            sql, _ = _cstring(body)
            if sql.strip().upper() in ("BEGIN", "ROLLBACK"):
                self.statements = []
            else:
                self.statements.append(sql)
        elif kind == b"P":
            name, offset = _cstring(body)
            sql, _ = _cstring(body, offset)
            self.prepared[name] = sql
            self.statements.append(sql)
        elif kind == b"B":
            _, offset = _cstring(body)  # the portal
            name, _ = _cstring(body, offset)
            if name and name in self.prepared:  # a prepared statement run again without its Parse
                self.statements.append(self.prepared[name])

    def _commit(self) -> bool:
        """At a COMMIT: True when the connection ends here (dropped before it); a COMMIT whose
        reply is to be withheld is marked for the other direction, then sent on."""
        action, matched = self.proxy._decide(self.statements)
        self.statements = []
        if action == "before":
            self.proxy._dropped(Drop("before", matched), self.client, self.server)
            return True
        if action == "after":
            self.withhold = matched
        return False

    def _server_to_client(self) -> None:
        try:
            withheld: list[tuple[bytes, bytes]] = []
            while True:
                kind = _read(self.server, 1)
                header = _read(self.server, 4)
                body = _read(self.server, struct.unpack("!I", header)[0] - 4)
                if self.withhold is None:
                    self.client.sendall(kind + header + body)
                    continue
                withheld.append((kind, body))  # the COMMIT's reply
                if kind == b"Z":  # ReadyForQuery: the COMMIT is over
                    tag = next((_cstring(b)[0] for k, b in withheld if k == b"C"), None)
                    self.proxy._dropped(Drop("after", self.withhold, tag), self.client, self.server)
                    return
        except (_Closed, OSError):
            _close(self.client)
            _close(self.server)
