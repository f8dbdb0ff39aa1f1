#!/usr/bin/env python3
"""Checks that docker-compose.cluster.yml deploys a JetStream cluster as issue 20 asks, and that
its command lines are ones the real programs accept, so that it cannot drift from their flags.

Reads the model `docker-compose config` resolved (YAML on standard input). Arguments: the
nats-server binary and the ennio binary to run the command lines with. Fails, naming what is
wrong, unless:

- three NATS services run with JetStream (-js) storing on a named volume of their own, under
  server names of their own, in one cluster (--cluster_name) whose routes (--routes) name the
  other two on the cluster port;
- at least two coordinators run with --mode jetstream and --replicas 3, each with a --name and
  a named volume for its history of its own;
- every ennio service is given all three servers (--server);
- nats-server accepts every NATS service's flags (run with -t, which parses the flags and then
  stops, asking for a configuration file), and ennio every ennio service's command line (run
  with --server pointing where nothing listens: it must get as far as connecting, not stop at
  a usage error).

Prints one line per finding; exits 1 on any failure.
"""

import os
import subprocess
import sys
import tempfile

import yaml

CLIENT_PORT = "4222"
CLUSTER_PORT = "6222"
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def words(service):
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def value(command, *names):
    """The value of the first of `names` in a command's words (`--name value` or `--name=value`)."""
    for index, word in enumerate(command):
        for name in names:
            if word == name and index + 1 < len(command):
                return command[index + 1]
            if word.startswith(name + "="):
                return word[len(name) + 1:]
    return None


def named_volume_at(service, target, model):
    """The named volume mounted at `target`, if any."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, mounted, kind = parts[0], parts[1] if len(parts) > 1 else "", "volume"
            if source.startswith(("/", ".")):
                kind = "bind"
        else:
            kind, source, mounted = volume.get("type"), volume.get("source"), volume.get("target")
        if kind == "volume" and mounted == target and source in (model.get("volumes") or {}):
            return source
    return None


def urls(text):
    return [url.strip() for url in (text or "").split(",") if url.strip()]


def run(arguments, what):
    try:
        finished = subprocess.run(arguments, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        fail("%s: %s did not finish within 60 s" % (what, " ".join(arguments)))
        return None
    return finished.returncode, finished.stdout + finished.stderr


def main():
    nats_server, ennio = sys.argv[1], sys.argv[2]
    model = yaml.safe_load(sys.stdin)
    services = model.get("services") or {}
    nats = {name: s for name, s in services.items() if str(s.get("image", "")).startswith("nats")}
    ennio_services = {name: s for name, s in services.items() if "build" in s}
    coordinators = {name: s for name, s in ennio_services.items() if words(s)[:1] == ["coordinator"]}

    # The servers: one cluster of three, each with JetStream on a volume of its own.
    if len(nats) != 3:
        fail("%d NATS services (%s), not 3" % (len(nats), ", ".join(sorted(nats)) or "none"))
    cluster_names, server_names, stores = set(), set(), set()
    for name, service in sorted(nats.items()):
        command = words(service)
        if "-js" not in command and "--jetstream" not in command:
            fail("%s runs without JetStream (-js)" % name)
        store = value(command, "-sd", "--store_dir")
        volume = named_volume_at(service, store, model) if store else None
        if volume is None:
            fail("%s keeps its JetStream store (-sd %s) on no named volume" % (name, store))
        elif volume in stores:
            fail("%s shares the volume %s with another server" % (name, volume))
        stores.add(volume)
        server_names.add(value(command, "--server_name", "-n", "--name"))
        cluster_names.add(value(command, "--cluster_name"))
        listen = value(command, "--cluster", "--cluster_listen") or ""
        if not listen.endswith(":" + CLUSTER_PORT):
            fail("%s listens for routes on %r, not port %s" % (name, listen, CLUSTER_PORT))
        wanted = {"nats://%s:%s" % (other, CLUSTER_PORT) for other in nats if other != name}
        routes = set(urls(value(command, "--routes")))
        if routes != wanted:
            fail("%s routes to %s, not to the other two servers (%s)" % (name, sorted(routes), sorted(wanted)))
    if len(nats) == 3 and (None in server_names or len(server_names) != 3):
        fail("the servers do not each have a --server_name of their own")
    if None in cluster_names or len(cluster_names) != 1:
        fail("the servers are not in one named cluster (--cluster_name: %s)" % sorted(map(str, cluster_names)))

    # The coordinators: replicas of one another, on an R3 stream.
    if len(coordinators) < 2:
        fail("%d coordinators, not at least 2" % len(coordinators))
    coordinator_names, histories = set(), set()
    for name, service in sorted(coordinators.items()):
        command = words(service)
        if value(command, "--mode") != "jetstream":
            fail("%s runs without --mode jetstream" % name)
        if value(command, "--replicas") != "3":
            fail("%s asks for --replicas %s, not 3" % (name, value(command, "--replicas")))
        replica = value(command, "--name")
        if replica is None or replica in coordinator_names:
            fail("%s has no --name of its own (%s): it would share another's durable consumer" % (name, replica))
        coordinator_names.add(replica)
        database = value(command, "--db") or ""
        volume = named_volume_at(service, os.path.dirname(database), model)
        if volume is None or volume in histories:
            fail("%s keeps its history (--db %s) on no named volume of its own" % (name, database))
        histories.add(volume)

    # Every ennio service knows every server.
    every_server = {"nats://%s:%s" % (name, CLIENT_PORT) for name in nats}
    for name, service in sorted(ennio_services.items()):
        given = set(urls(value(words(service), "--server")))
        if given != every_server:
            fail("%s is given --server %s, not the three servers %s" % (name, sorted(given), sorted(every_server)))

    # The real programs accept the command lines.
    for name, service in sorted(nats.items()):
        outcome = run([nats_server] + words(service) + ["-t"], name)
        if outcome and "must specify [-c, --config]" not in outcome[1]:
            fail("nats-server rejects %s's flags: %s" % (name, outcome[1].strip().splitlines()[0] if outcome[1].strip() else "status %d" % outcome[0]))
    with tempfile.TemporaryDirectory(prefix="ennio-compose-cluster-") as scratch:
        for name, service in sorted(ennio_services.items()):
            command = words(service)
            tried = []
            for index, word in enumerate(command):
                previous = command[index - 1] if index > 0 else ""
                if previous == "--server":
                    word = "nats://127.0.0.1:1"
                elif previous == "--db":
                    word = os.path.join(scratch, name + ".sqlite")
                tried.append(word)
            outcome = run([ennio] + tried, name)
            if outcome and not (outcome[0] == 1 and "no NATS server answers" in outcome[1]):
                fail("ennio rejects %s's command line (status %d): %s" % (name, outcome[0], outcome[1].strip().splitlines()[0] if outcome[1].strip() else ""))

    if not failures:
        print("ok: 3 clustered JetStream servers, %d coordinators (%s) on an R3 stream, %d ennio services given every server; nats-server and ennio accept every command line"
              % (len(coordinators), ", ".join(sorted(coordinator_names)), len(ennio_services)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
