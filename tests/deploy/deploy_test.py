#!/usr/bin/env python3
"""The shipped systemd units start with the shipped configs under their sandbox.

Both checks install the build with `cmake --install` (DESTDIR) into a scratch
file-system root, ROOT, and read the units and example configs from there, as
an IT team would find them. Every absolute path in a unit or a config, P, is
taken to mean ROOT/P: the configs are copied to ROOT/etc/samverka with only
their paths re-rooted (and the addresses pointed at loopback), the
certificates come from a `samverka pki` made for the test.

  units    for each installed unit: ExecStart's program and the Documentation=
           file are installed; the config ExecStart names is an installed
           example whose state_dir is /var/lib/<StateDirectory>; every
           absolute path of the example configs appears in the docs that
           tell IT teams to create it (deployment.md, pki.md for the CRL);
           `systemd-analyze verify --root=ROOT` accepts the unit without a
           warning (and does warn about a misspelt key, so the check can
           fail). verify runs offline, without systemd as PID 1; it needs
           ExecStart's program to exist, hence ROOT, into which the host's
           /lib/systemd/system is copied for the targets the units name.
  sandbox  the real daemons, started as each unit's ExecStart says, in a
           mount namespace built from the unit: the whole file system read-
           only (ProtectSystem=strict) except ROOT/var/lib/<StateDirectory>
           (created first, as systemd does) and ReadWritePaths=, an empty
           /tmp and /var/tmp (PrivateTmp=), /home, /root and /run/user hidden
           (ProtectHome=). The coordinator must reach "listening", the client
           must register with it, and both must stop cleanly on SIGTERM
           within TimeoutStopSec. First, the client with the old deployment
           files (no state_dir in client.toml, no StateDirectory= in the unit)
           must fail with "client.lock: Read-only file system": the sandbox
           is really read-only.

Not reproduced (they need systemd as PID 1 or root): User=samverka (the
daemons run as root of a user namespace, so file ownership is not checked),
PrivateDevices=, the Protect{Kernel*,ControlGroups}=, RestrictAddressFamilies=,
RestrictNamespaces=, NoNewPrivileges=.

Exits 77 (ctest SKIP_RETURN_CODE) if this machine cannot run a check:
no systemd-analyze, or no unprivileged mount namespaces.

Usage: deploy_test.py units|sandbox --cmake CMAKE --build-dir BUILD
           --source-dir SOURCE --unit-dir DIR --doc-dir DIR --work-dir WORK
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

SKIP = 77
START_DEADLINE_SECONDS = 120


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---- units and configs ------------------------------------------------------

def parse_unit(path):
    """{(section, key): [values]} of a systemd unit file."""
    entries = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def unit_values(unit, key, section="Service"):
    """The space-separated values of every `key=` line, in order."""
    return [v for line in unit.get((section, key), []) for v in line.split()]


def unit_value(unit, key, default=None, section="Service"):
    values = unit.get((section, key))
    return values[-1] if values else default


def config_strings(path):
    """{key: value} of the string values in a flat TOML file; the keys of a
    [table] are prefixed with its name (tls.crl)."""
    values = {}
    table = ""
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                table = line.strip("[]") + "."
                continue
            match = re.match(r'(\w+)\s*=\s*"([^"]*)"', line)
            if match:
                values[table + match[1]] = match[2]
    return values


def config_paths(values):
    """The absolute paths a config names (a csv: dataset's file included)."""
    paths = []
    for value in values.values():
        value = value[len("csv:"):].rsplit(":", 1)[0] if value.startswith("csv:") else value
        if value.startswith("/"):
            paths.append(value)
    return paths


def reroot(root, path):
    return os.path.join(root, path.lstrip("/"))


def install(args, root):
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, DESTDIR=root)
    result = subprocess.run([args.cmake, "--install", args.build_dir], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(result.returncode == 0, f"cmake --install failed:\n{result.stdout}")


def installed_units(args, root):
    unit_dir = reroot(root, args.unit_dir)
    units = sorted(f for f in os.listdir(unit_dir) if f.endswith(".service"))
    check(units == ["samverka-client.service", "samverka-coordinator.service"],
          f"{unit_dir} holds {units}")
    return [(name, os.path.join(unit_dir, name)) for name in units]


def exec_start(unit):
    """ExecStart= split into words, and the --config it names."""
    words = shlex.split(unit_value(unit, "ExecStart"))
    check("--config" in words, f"ExecStart has no --config: {words}")
    return words, words[words.index("--config") + 1]


def example_config(args, root, config):
    example = os.path.join(reroot(root, args.doc_dir), "examples", "deploy",
                           os.path.basename(config))
    check(os.path.isfile(example), f"ExecStart's config {config}: no example {example} installed")
    return example


def check_unit_files(args, root, name, path, unit):
    words, config = exec_start(unit)
    program = reroot(root, words[0])
    check(os.access(program, os.X_OK), f"{name}: ExecStart's {words[0]} is not installed")
    for url in unit_values(unit, "Documentation", section="Unit"):
        check(url.startswith("file://"), f"{name}: Documentation={url} is not a file")
        check(os.path.isfile(reroot(root, url[len("file://"):])),
              f"{name}: Documentation={url} is not installed")
    check(unit_values(unit, "Documentation", section="Unit"), f"{name}: no Documentation=")
    values = config_strings(example_config(args, root, config))
    state_dirs = ["/var/lib/" + d for d in unit_values(unit, "StateDirectory")]
    check(values.get("state_dir") in state_dirs,
          f"{name}: {os.path.basename(config)}'s state_dir = {values.get('state_dir')}, "
          f"but the unit's StateDirectory= gives {state_dirs}")
    return values


def check_docs(args, values):
    """Every path of an example config is in the docs that set it up."""
    with open(os.path.join(args.source_dir, "docs", "deployment.md")) as f:
        deployment = f.read()
    with open(os.path.join(args.source_dir, "docs", "pki.md")) as f:
        pki = f.read()
    for path in config_paths(values):
        check(path in deployment, f"docs/deployment.md does not mention {path}")
    if "tls.crl" in values:
        check(values["tls.crl"] in pki, f"docs/pki.md does not mention {values['tls.crl']}")


def systemd_analyze(root, unit_path):
    result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return result.returncode, result.stdout


def run_units(args):
    if shutil.which("systemd-analyze") is None:
        raise Skip("systemd-analyze not found (Debian: package systemd)")
    root = os.path.join(args.work_dir, "root")
    install(args, root)
    # systemd-analyze --root looks up the units a service depends on
    # (sysinit.target, network-online.target, ...) inside ROOT.
    shutil.copytree("/lib/systemd/system", os.path.join(root, "lib", "systemd", "system"),
                    symlinks=True, dirs_exist_ok=True)
    for name, path in installed_units(args, root):
        unit = parse_unit(path)
        values = check_unit_files(args, root, name, path, unit)
        check_docs(args, values)
        code, output = systemd_analyze(root, path)
        print(f"systemd-analyze verify {name}: exit {code}\n{output}", end="")
        check(code == 0 and "samverka" not in output,
              f"systemd-analyze verify {name} failed or warned:\n{output}")
        # The same check must see a broken unit.
        broken = os.path.join(os.path.dirname(path), "broken-" + name)
        with open(path) as f, open(broken, "w") as out:
            out.write(f.read().replace("StateDirectory=", "StateDirectorry=", 1))
        code, output = systemd_analyze(root, broken)
        check("Unknown key" in output and "StateDirectorry" in output,
              f"systemd-analyze verify did not warn about a misspelt key:\n{output}")
        os.remove(broken)
    print("units: OK")


# ---- the sandbox -----------------------------------------------------------

def enter(argv):
    """Inside `unshare --mount --map-root-user`: builds the sandbox, then
    executes the command. argv: [--rw P | --ro P | --ro-all | --tmpfs P |
    --hide P]... -- COMMAND..."""
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    pairs = [(options[i], options[i + 1] if i + 1 < len(options) else None)
             for i in range(len(options))]
    rw = [value for flag, value in pairs if flag == "--rw"]

    def mount(*words):
        result = subprocess.run(["mount", *words], stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            sys.exit(f"sandbox: mount {' '.join(words)}: {result.stderr.strip()}")

    mount("--make-rprivate", "/")
    for path in rw:
        mount("--bind", path, path)
    if "--ro-all" in options:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in points:
            point = point.replace("\\040", " ")
            kernel = any(point == p or point.startswith(p + "/") for p in ("/proc", "/sys", "/dev"))
            if not kernel and point not in rw:
                mount("-o", "remount,bind,ro", point)
    for flag, path in pairs:
        if flag == "--ro" and os.path.exists(path):
            mount("--bind", path, path)
            mount("-o", "remount,bind,ro", path)
        elif flag == "--tmpfs":
            mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", path)
        elif flag == "--hide" and os.path.isdir(path):
            mount("-t", "tmpfs", "-o", "ro,mode=000", "tmpfs", path)
    os.execv(command[0], command)


def sandbox_options(unit, root, keep_state=True):
    """Arguments for enter() that reproduce `unit`'s file-system sandbox;
    also creates the StateDirectory (as systemd does before a start)."""
    options = []
    if keep_state:
        mode = int(unit_value(unit, "StateDirectoryMode", "0755"), 8)
        for name in unit_values(unit, "StateDirectory"):
            path = reroot(root, "/var/lib/" + name)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
            options += ["--rw", path]
        for path in unit_values(unit, "ReadWritePaths"):
            options += ["--rw", reroot(root, path.lstrip("-"))]
    protect = unit_value(unit, "ProtectSystem", "no")
    if protect == "strict":
        options.append("--ro-all")
    elif protect in ("yes", "full", "true"):
        for path in ["/usr", "/boot", "/efi"] + (["/etc"] if protect == "full" else []):
            options += ["--ro", path, "--ro", reroot(root, path)]
    here = os.path.realpath(root)

    def holds_root(path):
        return here == path or here.startswith(path + "/")

    if unit_value(unit, "PrivateTmp") == "yes":
        for path in ("/tmp", "/var/tmp"):
            check(not holds_root(path), f"the test's root {root} is under {path} (PrivateTmp=)")
            options += ["--tmpfs", path]
    if unit_value(unit, "ProtectHome") == "yes":
        for path in ("/home", "/root", "/run/user"):
            check(not holds_root(path), f"the test's root {root} is under {path} (ProtectHome=)")
            options += ["--hide", path]
    return options


class Daemon:
    """A process whose output lines are collected by a thread."""

    def __init__(self, name, command, env):
        self.name = name
        print(f"{name}: {shlex.join(command)}")
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.lines = []
        self.done = False
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                print(f"  [{self.name}] {line}", end="")
                self.changed.notify_all()
        with self.changed:
            self.done = True
            self.changed.notify_all()

    def wait_for(self, pattern, seconds=START_DEADLINE_SECONDS):
        """The first output line matching `pattern`; fails if the process
        ends first or `seconds` pass."""
        deadline = time.monotonic() + seconds
        seen = 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.done:
                    raise Failure(f"{self.name} ended (exit {self.process.wait()}) "
                                  f"without logging /{pattern}/")
                remaining = deadline - time.monotonic()
                check(remaining > 0, f"{self.name} did not log /{pattern}/ within {seconds} s")
                self.changed.wait(remaining)

    def wait_exit(self, seconds):
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"{self.name} did not stop within {seconds} s")
        self.reader.join()
        return code

    def stop(self, seconds):
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(seconds)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def probe_namespaces():
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "mount", "-o",
                            "remount,bind,ro", "/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if probe.returncode != 0:
        raise Skip("cannot make a read-only mount namespace here "
                   f"(unshare --mount --map-root-user: {probe.stdout.strip()}); "
                   "unprivileged user namespaces may be disabled "
                   "(sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces)")


def write_config(example, path, root, addresses):
    """Copies `example` to `path` with each absolute path P re-rooted to
    ROOT/P and the keys in `addresses` set to new values."""
    with open(example) as f:
        text = f.read()
    text = re.sub(r'"((?:csv:)?)(/[^"]*)"',
                  lambda m: f'"{m[1]}{reroot(root, m[2])}"', text)
    for key, value in addresses.items():
        text, count = re.subn(rf'(?m)^{key}\s*=\s*"[^"]*"', f'{key} = "{value}"', text)
        check(count == 1, f"{example} has no {key}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"{path}:\n{text}")


def put(source, destination, mode=0o644):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copyfile(source, destination)
    os.chmod(destination, mode)


class Service:
    """One installed unit, its example config and how to start it."""

    def __init__(self, args, root, name, path):
        self.name = name
        self.root = root
        self.unit = parse_unit(path)
        self.words, self.config = exec_start(self.unit)
        self.example = example_config(args, root, self.config)
        self.values = config_strings(self.example)

    def environment(self):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/nonexistent", "USER": "samverka", "LOGNAME": "samverka",
               "LANG": "C.UTF-8"}
        for assignment in self.unit.get(("Service", "Environment"), []):
            for word in shlex.split(assignment):
                key, _, value = word.partition("=")
                env[key] = value
        return env

    def start(self, args, label, keep_state=True):
        command = [reroot(self.root, self.words[0])] + [
            reroot(self.root, w) if w.startswith("/") else w for w in self.words[1:]]
        sandbox = [sys.executable, os.path.abspath(__file__), "_enter",
                   *sandbox_options(self.unit, self.root, keep_state), "--", *command]
        return Daemon(label, ["unshare", "--mount", "--map-root-user", *sandbox],
                      self.environment())

    def stop_seconds(self):
        return float(unit_value(self.unit, "TimeoutStopSec", "90").rstrip("s"))


def make_pki(args, root, coordinator, client):
    """The federation's CA, the coordinator's and the site's certificates,
    placed where the configs say."""
    samverka = reroot(root, coordinator.words[0])
    pki = os.path.join(args.work_dir, "pki")
    site = os.path.basename(client.values["tls.certificate"]).removesuffix(".crt")
    host = client.values["coordinator"].rsplit(":", 1)[0]
    for command in (["init", "--federation", coordinator.values["federation_id"]],
                    ["issue", "--name", "coordinator", "--role", "coordinator",
                     "--san", host, "--san", "127.0.0.1"],
                    ["issue", "--name", site]):
        result = subprocess.run([samverka, "pki", command[0], "--dir", pki, *command[1:]],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(result.returncode == 0, f"samverka pki {command[0]} failed:\n{result.stdout}")
    files = {coordinator: (os.path.join(pki, "sites", "coordinator"), "coordinator"),
             client: (os.path.join(pki, "sites", site), site)}
    for service, (directory, name) in files.items():
        v = service.values
        put(os.path.join(directory, "ca.crt"), reroot(root, v["tls.ca_certificate"]))
        put(os.path.join(directory, name + ".crt"), reroot(root, v["tls.certificate"]))
        put(os.path.join(directory, name + ".key"), reroot(root, v["tls.private_key"]), 0o600)
    put(os.path.join(pki, "ca", "crl.pem"), reroot(root, coordinator.values["tls.crl"]))
    return site


def run_sandbox(args):
    if shutil.which("unshare") is None:
        raise Skip("unshare not found (Debian: package util-linux)")
    probe_namespaces()
    root = os.path.join(args.work_dir, "root")
    install(args, root)
    services = {name: Service(args, root, name, path) for name, path in installed_units(args, root)}
    coordinator = services["samverka-coordinator.service"]
    client = services["samverka-client.service"]
    site = make_pki(args, root, coordinator, client)
    specs = [v for k, v in client.values.items() if k.startswith("datasets.")]
    check(len(specs) == 1 and specs[0].startswith("csv:"),
          f"{client.example}: expected one csv: data set in [datasets], got {specs}")
    dataset = specs[0][len("csv:"):].rsplit(":", 1)[0]
    put(os.path.join(args.source_dir, "examples", "healthcare", "hospital-a.csv"),
        reroot(root, dataset))
    client_config = reroot(root, client.config)
    daemons = []
    try:
        # The old deployment files: client.toml without state_dir (the
        # daemon then keeps its state next to the config), a unit without
        # StateDirectory=.
        write_config(client.example, client_config, root,
                     {"coordinator": "127.0.0.1:9"})
        with open(client_config) as f:
            old = re.sub(r'(?m)^state_dir\s*=.*\n', "", f.read())
        with open(client_config, "w") as f:
            f.write(old)
        daemons.append(client.start(args, "old client", keep_state=False))
        daemons[-1].wait_for(r"client\.lock: Read-only file system")
        check(daemons[-1].wait_exit(30) != 0, "the old client exited with status 0")

        write_config(coordinator.example, reroot(root, coordinator.config), root,
                     {"listen": "127.0.0.1:0"})
        daemons.append(coordinator.start(args, "coordinator"))
        port = daemons[-1].wait_for(r"listening on .*\(port ([0-9]+)\)")[1]
        write_config(client.example, client_config, root,
                     {"coordinator": f"127.0.0.1:{port}"})
        daemons.append(client.start(args, "client"))
        daemons[-1].wait_for(rf"registered with federation "
                             rf"'{re.escape(coordinator.values['federation_id'])}' as {site}")
        for service, wrote in ((client, "client.lock"), (coordinator, "state.db")):
            path = os.path.join(reroot(root, service.values["state_dir"]), wrote)
            check(os.path.isfile(path), f"{service.name}: no {path}")
        for daemon, service in ((daemons[2], client), (daemons[1], coordinator)):
            code = daemon.stop(service.stop_seconds())
            check(code == 0, f"{daemon.name} exited with {code} on SIGTERM")
    finally:
        for daemon in daemons:
            daemon.kill()
    print("sandbox: OK")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_enter":
        enter(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["units", "sandbox"])
    for flag in ("--cmake", "--build-dir", "--source-dir", "--unit-dir", "--doc-dir",
                 "--work-dir"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    try:
        {"units": run_units, "sandbox": run_sandbox}[args.check](args)
    except Skip as skip:
        print(f"SKIPPED: {skip}")
        return SKIP
    except Failure as failure:
        print(f"FAILED: {failure}\n(files kept in {args.work_dir})")
        return 1
    shutil.rmtree(args.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
