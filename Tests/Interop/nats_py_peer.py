#!/usr/bin/env python3
"""An independent NATS peer built on nats-py, used by the interoperability tests.

The Swift tests start this script (with the interpreter from
scripts/install-tools.sh, i.e. NATS_PY_PYTHON) and talk to it through a real
nats-server, so our client is checked against someone else's implementation of
the protocol rather than against itself.

Modes
-----
sub    --url URL --subject SUBJ --count N [--timeout S]
       Subscribes, flushes, prints ``READY``, then prints one JSON line per
       received message:
           {"subject": str, "reply": str | null,
            "headers": {name: [value, ...]} | null, "payload_b64": str,
            "payload_json": the payload parsed by Python's json module, or null}
       Exits 0 after N messages, 3 if they do not all arrive within S seconds
       (counted from READY).

pub    --url URL --subject SUBJ --payload-b64 B64 [--header NAME=VALUE ...] [--reply R]
       Publishes one message (HPUB when any --header is given, PUB otherwise),
       flushes, closes, exits 0.

reply  --url URL --subject SUBJ --count N [--timeout S]
       Subscribes, flushes, prints ``READY``, then answers N requests with the
       payload b"echo:" + request payload. Each request is also printed as a
       JSON line (same shape as in ``sub``) before it is answered. Exits 0
       after N requests, 3 on timeout.

events --url URL --file PATH
       Publishes every line of PATH, ``SUBJECT JSON``, to JetStream in order:
       the JSON is read and written again by Python's json module (its own
       spacing), with the header ``Nats-Msg-Id`` set to the event's ``id``,
       and each acknowledgement is awaited. Prints one JSON line per event:
           {"subject": str, "stream": str, "seq": int, "duplicate": bool}
       Exits 0 after the last line.

kv-put    --url URL --bucket B --key K --value-b64 B64
       Binds the existing bucket, puts the value, prints {"revision": n}.

kv-get    --url URL --bucket B --key K
       Prints the key's latest entry as a JSON line (see ``kv-watch``), or
       {"missing": true} when nats-py reports the key not found.

kv-watch  --url URL --bucket B --key PATTERN --count N [--timeout S]
       Watches the bucket (PATTERN may hold wildcards), prints ``READY`` once the
       watch is set up, then one JSON line per update:
           {"key": str, "value_b64": str, "revision": int, "delta": int,
            "operation": "PUT" | "DEL" | "PURGE"}
       or {"initial_done": true} for nats-py's end-of-initial-values marker.
       Exits 0 after N lines (the marker counts), 3 on timeout.

obj-put   --url URL --bucket B --name NAME --file PATH
       Binds the existing object store, stores the file, prints
       {"size": int, "chunks": int, "digest": str, "nuid": str}.

obj-get   --url URL --bucket B --name NAME --file PATH
       Writes the object to PATH (nats-py checks the digest as it reads) and
       prints the same JSON as obj-put.

obj-watch --url URL --bucket B --count N [--timeout S]
       Watches the object store, prints ``READY``, then one JSON line per update:
       {"name": str, "size": int, "deleted": bool, "digest": str | null} or
       {"initial_done": true}. Exits 0 after N lines, 3 on timeout.

request   --url URL --subject SUBJ --payload-b64 B64 [--timeout S]
       Sends one request and prints the reply as a JSON line (same shape as in
       ``sub``). Exits 3 when no reply comes in time.

srv-discover --url URL --subject SUBJ --count N [--timeout S]
       Sends one discovery request ($SRV.PING, $SRV.INFO.<name>, ...) to a private
       inbox, reads N answers with nats-py's own service models
       (``nats.micro.service.ServicePing|ServiceInfo|ServiceStats.from_dict``,
       chosen by the answer's ``type``) and prints each as that model's
       ``to_dict()`` in JSON, plus "type". Exits 0 after N answers, 3 on timeout.
Security options (every mode)
-----------------------------
--tls-ca FILE [--tls-cert FILE --tls-key FILE]
       Connect with TLS, trusting FILE's authorities (and presenting a client certificate).
--creds FILE | --nkey-seed FILE
       Authenticate with a .creds file (user JWT and seed) or an NKEY seed file.

Any other failure is reported on stderr with a non-zero exit status
(1 for runtime errors, 2 for bad arguments).

Headers and nats-py 2.16.0
--------------------------
nats-py represents headers as a plain ``Dict[str, str]``:

* Receiving: ``Client._parse_header_lines`` splits the raw header block into
  lines and assigns ``out[name] = value`` for each one, so when a name occurs
  more than once only the *last* value survives. The raw header block is not
  exposed on ``Msg``. Names keep their case exactly as sent (no
  canonicalisation) and values are stripped of surrounding whitespace. The
  ``headers`` lists printed by ``sub`` therefore always hold exactly one value;
  a test that needs to see every value of a repeated header cannot use this
  peer for it.
* Publishing: ``publish(headers=...)`` writes one ``Name: value`` line per dict
  entry, and each value must be a ``str``; there is no way to send two values
  for one name. ``pub`` therefore rejects a repeated --header name instead of
  silently dropping one of the values.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import ssl
import sys
from typing import Dict, List, NoReturn, Optional

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


class PeerError(Exception):
    """A failure worth a one-line message on stderr and a non-zero exit."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def emit(line: str) -> None:
    """Writes one line to stdout and flushes it so the test sees it at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fail(message: str, status: int) -> NoReturn:
    sys.stderr.write(f"nats_py_peer: {message}\n")
    sys.stderr.flush()
    sys.exit(status)


def decode_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def describe(msg: Msg) -> str:
    """The JSON line printed for a received message."""
    headers: Optional[Dict[str, List[str]]] = None
    if msg.headers is not None:
        # One value per name: see the module docstring.
        headers = {name: [value] for name, value in msg.headers.items()}
    return json.dumps(
        {
            "subject": msg.subject,
            "reply": msg.reply or None,
            "headers": headers,
            "payload_b64": base64.b64encode(msg.data).decode("ascii"),
            # The payload as Python's own json module reads it (None if it is not JSON), so a
            # test can check that an independent decoder sees the same event.
            "payload_json": decode_json(msg.data),
        },
        sort_keys=True,
    )


def security(args: argparse.Namespace) -> Dict[str, object]:
    """nats.connect's TLS and credential arguments from the security options."""
    options: Dict[str, object] = {}
    for name in ("tls_ca", "tls_cert", "tls_key", "creds", "nkey_seed"):
        if not hasattr(args, name):
            setattr(args, name, None)
    if args.tls_ca:
        context = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        options["tls"] = context
    if args.creds:
        options["user_credentials"] = args.creds
    if args.nkey_seed:
        options["nkeys_seed"] = args.nkey_seed
    return options


async def connect(url: str, args: argparse.Namespace) -> Client:
    async def on_error(error: Exception) -> None:
        sys.stderr.write(f"nats_py_peer: connection error: {error!r}\n")
        sys.stderr.flush()

    try:
        return await nats.connect(
            **security(args),
            servers=[url],
            allow_reconnect=False,
            connect_timeout=5,
            # Fail fast when nobody listens: two attempts, 0.2 s apart. (0 would mean "forever".)
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=on_error,
        )
    except Exception as error:  # nats-py raises several unrelated types here
        raise PeerError(f"cannot connect to {url}: {error!r}") from error


async def close(nc: Client) -> None:
    try:
        await nc.close()
    except Exception:
        pass


async def run_receiver(args: argparse.Namespace, answer: bool) -> None:
    """Shared body of ``sub`` and ``reply``: take ``args.count`` messages."""
    nc = await connect(args.url, args)
    try:
        sub = await nc.subscribe(args.subject)
        await nc.flush(timeout=5)
        emit("READY")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        for received in range(args.count):
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                msg = await sub.next_msg(timeout=remaining)
            except (asyncio.TimeoutError, nats.errors.TimeoutError) as error:
                raise PeerError(
                    f"timed out after {args.timeout}s with {received} of {args.count} messages",
                    EXIT_TIMEOUT,
                ) from error
            emit(describe(msg))
            if answer:
                if not msg.reply:
                    raise PeerError(f"request on {msg.subject} has no reply subject")
                await nc.publish(msg.reply, b"echo:" + msg.data)
        await nc.flush(timeout=5)
    finally:
        await close(nc)


def parse_headers(pairs: List[str]) -> Optional[Dict[str, str]]:
    if not pairs:
        return None
    headers: Dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise PeerError(f"--header wants NAME=VALUE, got {pair!r}", EXIT_USAGE)
        if name in headers:
            raise PeerError(
                f"--header {name!r} given twice; nats-py can send only one value per name",
                EXIT_USAGE,
            )
        headers[name] = value
    return headers


async def run_pub(args: argparse.Namespace) -> None:
    try:
        payload = base64.b64decode(args.payload_b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PeerError(f"--payload-b64 is not valid base64: {error}", EXIT_USAGE) from error
    headers = parse_headers(args.header)
    nc = await connect(args.url, args)
    try:
        await nc.publish(args.subject, payload, reply=args.reply or "", headers=headers)
        await nc.flush(timeout=5)
    finally:
        await close(nc)


async def run_events(args: argparse.Namespace) -> None:
    nc = await connect(args.url, args)
    try:
        js = nc.jetstream()
        with open(args.file, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                line = line.strip()
                if not line:
                    continue
                subject, sep, text = line.partition(" ")
                if not sep:
                    raise PeerError(f"line {number}: want SUBJECT JSON", EXIT_USAGE)
                event = json.loads(text)
                payload = json.dumps(event).encode("utf-8")
                ack = await js.publish(subject, payload, headers={"Nats-Msg-Id": event["id"]}, timeout=10)
                emit(json.dumps({"subject": subject, "stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))
    finally:
        await close(nc)


def describe_entry(entry) -> str:
    """The JSON line printed for a Key-Value entry (``None``: the initial-values marker)."""
    if entry is None:
        return json.dumps({"initial_done": True})
    return json.dumps(
        {
            "key": entry.key,
            "value_b64": base64.b64encode(entry.value or b"").decode("ascii"),
            "revision": entry.revision,
            "delta": entry.delta,
            # nats-py leaves the operation unset for a put.
            "operation": entry.operation or "PUT",
        },
        sort_keys=True,
    )


def describe_object(info) -> str:
    """The JSON line printed for an object's info (``None``: the initial-values marker)."""
    if info is None:
        return json.dumps({"initial_done": True})
    return json.dumps(
        {
            "name": info.name,
            "size": info.size or 0,
            "chunks": info.chunks or 0,
            "deleted": bool(info.deleted),
            "digest": info.digest or None,
            "nuid": info.nuid,
        },
        sort_keys=True,
    )


async def take_updates(next_update, describe_update, count: int, timeout: float) -> None:
    """Prints ``count`` updates that ``next_update(remaining)`` returns, within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for received in range(count):
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            update = await next_update(remaining)
        except (asyncio.TimeoutError, nats.errors.TimeoutError) as error:
            raise PeerError(f"timed out after {timeout}s with {received} of {count} updates", EXIT_TIMEOUT) from error
        emit(describe_update(update))


async def run_kv(args: argparse.Namespace) -> None:
    nc = await connect(args.url, args)
    try:
        kv = await nc.jetstream().key_value(args.bucket)
        if args.mode == "kv-put":
            try:
                value = base64.b64decode(args.value_b64, validate=True)
            except (binascii.Error, ValueError) as error:
                raise PeerError(f"--value-b64 is not valid base64: {error}", EXIT_USAGE) from error
            emit(json.dumps({"revision": await kv.put(args.key, value)}))
        elif args.mode == "kv-get":
            try:
                emit(describe_entry(await kv.get(args.key)))
            except nats.js.errors.KeyNotFoundError:
                emit(json.dumps({"missing": True}))
        else:
            watcher = await kv.watch(args.key)
            emit("READY")
            await take_updates(lambda remaining: watcher.updates(timeout=remaining), describe_entry, args.count, args.timeout)
            await watcher.stop()
    finally:
        await close(nc)


async def run_obj(args: argparse.Namespace) -> None:
    nc = await connect(args.url, args)
    try:
        store = await nc.jetstream().object_store(args.bucket)
        if args.mode == "obj-put":
            with open(args.file, "rb") as source:
                emit(describe_object(await store.put(args.name, source)))
        elif args.mode == "obj-get":
            with open(args.file, "wb") as target:
                result = await store.get(args.name, writeinto=target)
            emit(describe_object(result.info))
        else:
            watcher = await store.watch()
            emit("READY")
            await take_updates(lambda remaining: watcher.updates(timeout=remaining), describe_object, args.count, args.timeout)
            await watcher.stop()
    finally:
        await close(nc)


async def run_request(args: argparse.Namespace) -> None:
    try:
        payload = base64.b64decode(args.payload_b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PeerError(f"--payload-b64 is not valid base64: {error}", EXIT_USAGE) from error
    nc = await connect(args.url, args)
    try:
        try:
            reply = await nc.request(args.subject, payload, timeout=args.timeout)
        except nats.errors.TimeoutError as error:
            raise PeerError(f"no reply within {args.timeout}s", EXIT_TIMEOUT) from error
        emit(describe(reply))
    finally:
        await close(nc)


async def run_discover(args: argparse.Namespace) -> None:
    from nats.micro import service as micro

    models = {
        micro.PING_RESPONSE_TYPE: micro.ServicePing,
        micro.INFO_RESPONSE_TYPE: micro.ServiceInfo,
        micro.STATS_RESPONSE_TYPE: micro.ServiceStats,
    }
    nc = await connect(args.url, args)
    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish(args.subject, b"", reply=inbox)

        async def next_answer(remaining: float):
            msg = await sub.next_msg(timeout=remaining)
            data = json.loads(msg.data)
            model = models.get(data.get("type"))
            if model is None:
                raise PeerError(f"an answer of unknown type: {data!r}")
            answer = model.from_dict(data)
            result = answer.to_dict()
            result["type"] = data["type"]
            return result

        await take_updates(next_answer, lambda result: json.dumps(result, sort_keys=True, default=str), args.count, args.timeout)
    finally:
        await close(nc)


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def parse_arguments(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nats_py_peer.py", description=__doc__.split("\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)

    def common(mode: argparse.ArgumentParser) -> None:
        mode.add_argument("--url", required=True, help="e.g. nats://127.0.0.1:4222")
        mode.add_argument("--subject", required=True)
        security_options(mode)

    def security_options(mode: argparse.ArgumentParser) -> None:
        for option in ("--tls-ca", "--tls-cert", "--tls-key", "--creds", "--nkey-seed"):
            mode.add_argument(option, default=None)

    for name in ("sub", "reply"):
        mode = modes.add_parser(name)
        common(mode)
        mode.add_argument("--count", type=positive, required=True)
        mode.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120: only a safety net)")

    pub = modes.add_parser("pub")
    common(pub)
    pub.add_argument("--payload-b64", required=True, help="payload bytes, base64 (may be empty)")
    pub.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    pub.add_argument("--reply", default=None)

    events = modes.add_parser("events")
    events.add_argument("--url", required=True)
    events.add_argument("--file", required=True, help="lines of SUBJECT JSON")

    for name in ("kv-put", "kv-get", "kv-watch"):
        mode = modes.add_parser(name)
        mode.add_argument("--url", required=True)
        mode.add_argument("--bucket", required=True)
        mode.add_argument("--key", required=True, help="a key, or for kv-watch a pattern")
        if name == "kv-put":
            mode.add_argument("--value-b64", required=True)
        if name == "kv-watch":
            mode.add_argument("--count", type=positive, required=True)
            mode.add_argument("--timeout", type=float, default=120.0)

    request = modes.add_parser("request")
    common(request)
    request.add_argument("--payload-b64", required=True)
    request.add_argument("--timeout", type=float, default=60.0)

    discover = modes.add_parser("srv-discover")
    common(discover)
    discover.add_argument("--count", type=positive, required=True)
    discover.add_argument("--timeout", type=float, default=120.0)

    for name in ("obj-put", "obj-get", "obj-watch"):
        mode = modes.add_parser(name)
        mode.add_argument("--url", required=True)
        mode.add_argument("--bucket", required=True)
        if name == "obj-watch":
            mode.add_argument("--count", type=positive, required=True)
            mode.add_argument("--timeout", type=float, default=120.0)
        else:
            mode.add_argument("--name", required=True)
            mode.add_argument("--file", required=True)
    security_options(events)
    return parser.parse_args(argv)


def main(argv: List[str]) -> None:
    args = parse_arguments(argv)
    if args.mode == "pub":
        work = run_pub(args)
    elif args.mode == "events":
        work = run_events(args)
    elif args.mode.startswith("kv-"):
        work = run_kv(args)
    elif args.mode.startswith("obj-"):
        work = run_obj(args)
    elif args.mode == "request":
        work = run_request(args)
    elif args.mode == "srv-discover":
        work = run_discover(args)
    else:
        work = run_receiver(args, answer=args.mode == "reply")
    try:
        asyncio.run(work)
    except PeerError as error:
        fail(str(error), error.status)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_ERROR)
    except Exception as error:
        fail(f"{type(error).__name__}: {error}", EXIT_ERROR)


if __name__ == "__main__":
    main(sys.argv[1:])
