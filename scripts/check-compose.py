#!/usr/bin/env python3
"""Checks that docker-compose.yml deploys what issue 14 asks, so that it cannot drift back.

Reads the model `docker-compose config` resolved (YAML on standard input; the repository's root
is the first argument) and fails, naming what is missing, unless:

- the NATS service runs the repository's server configuration (deploy/nats-server.conf) and
  that configuration turns on JetStream, requires TLS and includes the authorization that
  deploy/make-credentials.sh writes, with every variable it uses set by the service;
- JetStream stores on a named volume, and the certificate, key and authorization are mounted;
- the coordinator runs with --mode=jetstream, and every ennio service connects over TLS
  (tls://, --tlsca) as a user of its own (--nkey from deploy/secrets, --inbox-prefix
  _INBOX.<user>); each agent's user is agent-<its host>.

Prints one line per finding; exits 1 on any failure.
"""

import os
import re
import sys

import yaml

failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def mounts(service):
    """target -> (type, source) for the service's volumes."""
    result = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1]
            kind = "bind" if source.startswith(("/", ".")) else "volume"
        else:
            kind, source, target = volume.get("type"), volume.get("source"), volume.get("target")
        result[target] = (kind, source)
    return result


def options(command):
    """--name=value and --name value options of a command list."""
    found = {}
    words = list(command or [])
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            if "=" in word:
                name, value = word[2:].split("=", 1)
            elif index + 1 < len(words) and not words[index + 1].startswith("--"):
                name, value = word[2:], words[index + 1]
                index += 1
            else:
                name, value = word[2:], ""
            found[name] = value
        index += 1
    return found


def block(text, name):
    """The body of `name { ... }` in a nats-server configuration (no nested braces needed)."""
    match = re.search(r"(?m)^\s*" + name + r"\s*[:=]?\s*\{(.*?)^\s*\}", text, re.S)
    return match.group(1) if match else None


def main():
    root = sys.argv[1]
    model = yaml.safe_load(sys.stdin)
    services = model.get("services") or {}
    named_volumes = set((model.get("volumes") or {}).keys())
    secrets = os.path.join(root, "deploy", "secrets")

    # --- The NATS server -------------------------------------------------------------------
    nats = next((s for s in services.values() if str(s.get("image", "")).startswith("nats")), None)
    if nats is None:
        fail("no service runs the nats image")
        return
    command = nats.get("command") or []
    if "-c" not in command or command.index("-c") + 1 >= len(command):
        fail("the nats service does not run a configuration file (-c FILE)")
        return
    config_target = command[command.index("-c") + 1]
    nats_mounts = mounts(nats)
    kind, config_source = nats_mounts.get(config_target, (None, None))
    if config_source != os.path.join(root, "deploy", "nats-server.conf"):
        fail(f"the nats service's configuration {config_target} is not deploy/nats-server.conf (it is {config_source})")
        return
    text = open(config_source, encoding="utf-8").read()
    environment = nats.get("environment") or {}
    for variable in sorted(set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))):
        if not environment.get(variable):
            fail(f"deploy/nats-server.conf uses ${variable}, which the nats service does not set")

    def value(body, key):
        match = re.search(r"(?m)^\s*" + key + r"\s*[:=]\s*\"?([^\s\"]+)\"?", body or "")
        if not match:
            return None
        word = match.group(1)
        return environment.get(word[1:]) if word.startswith("$") else word

    jetstream = block(text, "jetstream")
    store = value(jetstream, "store_dir")
    if jetstream is None or store is None:
        fail("deploy/nats-server.conf has no jetstream block with a store_dir")
    else:
        kind, source = nats_mounts.get(store, (None, None))
        if kind != "volume" or source not in named_volumes:
            fail(f"JetStream stores in {store}, which is not a named volume of the compose file")
        else:
            print(f"ok: JetStream stores in {store}, the named volume {source}")

    tls = block(text, "tls")
    if tls is None:
        fail("deploy/nats-server.conf has no tls block: clients would connect in plain text")
    else:
        for key in ("cert_file", "key_file"):
            path = value(tls, key)
            kind, source = nats_mounts.get(path, (None, None)) if path else (None, None)
            if kind != "bind" or not source.startswith(secrets + "/"):
                fail(f"the TLS {key} {path} is not mounted from deploy/secrets")
        if re.search(r"(?m)^\s*allow_non_tls\s*[:=]\s*true", text):
            fail("deploy/nats-server.conf allows clients without TLS (allow_non_tls)")
        else:
            print("ok: TLS is required, with the certificate and key from deploy/secrets")

    include = re.search(r"(?m)^\s*include\s+\"?([^\s\"]+)\"?", text)
    if include is None:
        fail("deploy/nats-server.conf includes no authorization (include \"auth.conf\")")
    else:
        target = os.path.join(os.path.dirname(config_target), include.group(1))
        kind, source = nats_mounts.get(target, (None, None))
        if source != os.path.join(secrets, "auth.conf"):
            fail(f"the included {include.group(1)} ({target}) is not deploy/secrets/auth.conf, which deploy/make-credentials.sh writes")
        else:
            print("ok: the server includes the authorization deploy/make-credentials.sh writes")
    if re.search(r"(?m)^\s*(no_auth_user|authorization)\b", text):
        fail("deploy/nats-server.conf defines users or a default user itself: the roles live in auth.conf")

    # --- The ennio services -----------------------------------------------------------------
    ennio = {name: s for name, s in services.items() if s is not nats and "ennio" in str(s.get("image", "")) + str(s.get("build", ""))}
    if not any((s.get("command") or [""])[0] == "coordinator" for s in ennio.values()):
        fail("no service runs the coordinator")
    agents = 0
    for name, service in sorted(ennio.items()):
        command = service.get("command") or []
        role = command[0] if command else ""
        found = options(command[1:])
        environment = service.get("environment") or {}
        server = found.get("server") or environment.get("NATS_URL", "")
        ca = found.get("tlsca") or environment.get("NATS_CA")
        nkey = found.get("nkey") or environment.get("NATS_NKEY")
        prefix = found.get("inbox-prefix") or environment.get("NATS_INBOX_PREFIX")
        if not server.startswith("tls://"):
            fail(f"{name} does not connect with TLS (server {server!r})")
        if not ca:
            fail(f"{name} names no CA to trust (--tlsca or NATS_CA)")
        kind, source = mounts(service).get(nkey, (None, None)) if nkey else (None, None)
        if kind != "bind" or not source or not source.startswith(secrets + "/") or not source.endswith(".nk"):
            fail(f"{name} connects with no NKEY seed from deploy/secrets (--nkey or NATS_NKEY)")
            continue
        user = os.path.basename(source)[:-3]
        if prefix != "_INBOX." + user:
            fail(f"{name} connects as {user} but its inbox prefix is {prefix!r}, not _INBOX.{user}")
        if role == "coordinator":
            if found.get("mode") != "jetstream":
                fail(f"{name} runs the coordinator without --mode=jetstream")
            if user != "coordinator":
                fail(f"{name} runs the coordinator as {user}")
        elif role == "agent":
            agents += 1
            host = found.get("host")
            if user != f"agent-{host}":
                fail(f"{name} runs the agent of {host} as {user}, not agent-{host}")
        if not any(message.startswith(name + " ") for message in failures):
            print(f"ok: {name} ({role if role in ('coordinator', 'agent') else 'tools'}) connects over TLS as {user}")
    if agents == 0:
        fail("no service runs an agent")


main()
sys.exit(1 if failures else 0)
