#!/usr/bin/python3
"""The Debian package, end to end: build it, install it, start its service's
command, talk to it with etcdctl, stop it, remove it.

    deb_package_test.py --cpack /usr/bin/cpack --build-dir build [--etcdctl /usr/bin/etcdctl]

The package is made by cpack from the build tree's programs (the ones every
other test runs), so the test costs a strip, a gzip and a dpkg run, not a
second build.

How far it goes depends on what is safe on the machine running it:

  install  (root, apt-get present, no etcdpp package installed already):
           `apt-get install ./etcdpp_*.deb` really installs it, which checks
           what only dpkg and apt can: the declared dependencies resolve
           against the machine's packages, the files land where the unit and
           the man pages say, the conffile is registered. The command is then
           run from the installed files, and `dpkg --purge` removes the
           package in every case (also on failure), restoring the machine:
           the package has no maintainer scripts, creates no user and starts
           nothing, so purge leaves nothing behind. The service itself is not
           started through systemd (there may be none, and a service on port
           2379 would collide with other tests); its ExecStart line is run
           the way systemd would run it, on free ports. A lock file keeps two
           runs of this test (e.g. in two checkouts) from installing at once.
  extract  (otherwise, or ETCDPP_PACKAGE_TEST=extract): the same checks on
           the files unpacked with `dpkg-deb -x` into a temporary root, and
           the dependencies checked against the libraries the programs load.

Either way the programs' shared libraries must all come from packages the
package depends on, so an install on a clean machine gets them.
"""

import argparse
import fcntl
import glob
import gzip
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

PACKAGE = "etcdpp"
PROGRAMS = ["etcdpp", "etcdppctl", "etcdpp-bench"]
UNIT = "lib/systemd/system/etcdpp.service"
DEFAULTS = "etc/default/etcdpp"
EXPECTED_FILES = ["usr/bin/" + p for p in PROGRAMS] + [
    UNIT, DEFAULTS,
    "usr/share/man/man1/etcdpp.1.gz", "usr/share/man/man1/etcdppctl.1.gz",
    "usr/share/doc/etcdpp/copyright",
]
LOCK_PATH = "/run/lock/etcdpp-package-test.lock"
# etcd's zap timestamps: UTC, milliseconds.
ETCD_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run(cmd, timeout=120, check=True, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result


def build_package(cpack, build_dir, out_dir):
    started = time.monotonic()
    run([cpack, "-G", "DEB", "--config", os.path.join(build_dir, "CPackConfig.cmake"),
         "-B", out_dir], timeout=240)
    debs = glob.glob(os.path.join(out_dir, "etcdpp_*.deb"))
    assert len(debs) == 1, f"expected one etcdpp_*.deb in {out_dir}, found {debs}"
    print(f"built {os.path.basename(debs[0])} in {time.monotonic() - started:.1f}s")
    return debs[0]


def package_name_parts(deb):
    """Version and architecture from the control file; the file name must
    be etcdpp_<version>_<arch>.deb."""
    fields = {}
    for field in ("Package", "Version", "Architecture", "Depends", "Maintainer"):
        fields[field] = run(["dpkg-deb", "-f", deb, field]).stdout.strip()
    assert fields["Package"] == PACKAGE, fields
    expected = f"{PACKAGE}_{fields['Version']}_{fields['Architecture']}.deb"
    assert os.path.basename(deb) == expected, f"{os.path.basename(deb)} != {expected}"
    assert fields["Architecture"] == run(["dpkg", "--print-architecture"]).stdout.strip()
    return fields


def check_contents(deb):
    listing = run(["dpkg-deb", "--contents", deb]).stdout
    paths = {line.split()[-1].lstrip("./") for line in listing.splitlines() if line.strip()}
    missing = [f for f in EXPECTED_FILES if f not in paths]
    assert not missing, f"missing from the package: {missing}\n{listing}"
    # An edited defaults file must survive upgrades: dpkg has to know it as a conffile.
    with tempfile.TemporaryDirectory() as control:
        run(["dpkg-deb", "--control", deb, control])
        with open(os.path.join(control, "conffiles")) as f:
            assert "/" + DEFAULTS in f.read().split(), "/etc/default/etcdpp is not a conffile"
        scripts = [s for s in ("preinst", "postinst", "prerm", "postrm")
                   if os.path.exists(os.path.join(control, s))]
        # The install mode's "purge restores the machine" relies on this.
        assert not scripts, f"unexpected maintainer scripts: {scripts}"


def depends_packages(depends):
    names = set()
    for clause in depends.split(","):
        for alternative in clause.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.add(name)
    return names


def owning_packages(paths):
    """{path: installed package shipping it}, trying both sides of Debian's
    merged /usr (dpkg records whichever path the package used). One dpkg -S
    for all paths: each call reads the whole file database."""
    variants = {}
    for path in paths:
        real = os.path.realpath(path)
        for p in (path, real):
            variants.setdefault(path, []).extend(
                [p, p[4:] if p.startswith("/usr/") else "/usr" + p])
    every = sorted({v for vs in variants.values() for v in vs})
    found = {}
    for line in run(["dpkg", "-S"] + every, check=False).stdout.splitlines():
        package, _, path = line.partition(": ")
        found[path.strip()] = package.split(":")[0]
    owners = {}
    for path, candidates in variants.items():
        owner = next((found[c] for c in candidates if c in found), None)
        assert owner, f"no installed package ships {path}"
        owners[path] = owner
    return owners


def dependency_closure(names):
    """The installed packages that installing something which Depends on
    `names` pulls in, following Depends and Pre-Depends (every alternative)
    and resolving virtual names through Provides."""
    fmt = "${Package}\t${Provides}\t${Depends}, ${Pre-Depends}\n"
    listing = run(["dpkg-query", "-W", "-f=" + fmt]).stdout
    providers, depends_of = {}, {}
    for line in listing.splitlines():
        package, provides, depends = line.split("\t")
        depends_of[package] = depends_packages(depends)
        for name in {package} | depends_packages(provides):
            providers.setdefault(name, set()).add(package)
    closure, pending = set(), list(names)
    while pending:
        for package in providers.get(pending.pop(), ()):
            if package not in closure:
                closure.add(package)
                pending.extend(depends_of[package])
    return closure


def check_dependencies(root, depends):
    """Every library the programs load (ldd: direct and indirect) ships in a
    package that installing this one pulls in. dpkg-shlibdeps lists only the
    libraries whose symbols the programs use; the rest must come through
    those packages' own dependencies."""
    declared = depends_packages(depends)
    assert "libc6" in declared, f"Depends lacks libc6: {depends}"
    pulled_in = dependency_closure(declared)
    loaded = {}  # library path -> a program loading it
    for program in PROGRAMS:
        ldd = run(["ldd", os.path.join(root, "usr/bin", program)]).stdout
        for line in ldd.splitlines():
            if "not found" in line:
                raise AssertionError(f"{program}: {line.strip()}")
            match = re.search(r"=> (/\S+)", line)
            if match:  # (linux-vdso and the dynamic loader have no "=> path")
                loaded.setdefault(match.group(1), program)
    for path, package in owning_packages(loaded).items():
        assert package in pulled_in, (
            f"{loaded[path]} loads {path} from {package}, which Depends "
            f"({depends}) does not pull in")


def check_man_pages(root):
    for page, title in (("etcdpp.1.gz", ".TH ETCDPP 1"), ("etcdppctl.1.gz", ".TH ETCDPPCTL 1")):
        with gzip.open(os.path.join(root, "usr/share/man/man1", page), "rt") as f:
            assert f.read().startswith(title), f"{page} is not a man page"


def parse_unit(path):
    """[Service] keys of a unit file; a key given several times keeps every value."""
    service = {}
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                key, _, value = line.partition("=")
                service.setdefault(key.strip(), []).append(value.strip())
    return service


def expand_specifiers(text):
    def one(match):
        spec = match.group(1)
        if spec == "%":
            return "%"
        if spec == "H":
            return socket.gethostname()
        raise AssertionError(f"the test does not know the unit's specifier %{spec}")
    return re.sub(r"%(.)", one, text)


def read_environment_file(path, env):
    """systemd's EnvironmentFile: KEY=value lines, '#' comments, optional quotes."""
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not KEY=value: {line!r}"
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key.strip()] = value


def expand_exec_start(line, env):
    """systemd's rules for ExecStart: $VAR alone splits into words, ${VAR}
    is one word; a leading -, @, +, ! or : is a prefix, not part of the path."""
    words = []
    for word in shlex.split(line.lstrip("-@+!:")):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            words.extend(env.get(whole.group(1), "").split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                                lambda m: env.get(m.group(1), ""), word))
    return words


def check_unit_settings(service):
    def one(key):
        values = service.get(key, [])
        assert len(values) == 1, f"unit: expected one {key}=, got {values}"
        return values[0]
    assert one("EnvironmentFile") == "-/etc/default/etcdpp"
    assert one("User") == "etcdpp"
    assert one("StateDirectory") == "etcdpp"
    assert "ETCD_DATA_DIR=/var/lib/etcdpp/default" in service.get("Environment", [])
    assert one("ExecStart").split()[0] == "/usr/bin/etcdpp"


def start_unit_command(root, work, etcdctl):
    """Runs the unit's ExecStart as systemd would (its environment, then the
    defaults file), with the data dir, ports and a log file moved to the test's."""
    service = parse_unit(os.path.join(root, UNIT))
    check_unit_settings(service)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for assignment in service.get("Environment", []):
        for word in shlex.split(assignment):
            key, _, value = word.partition("=")
            env[key] = expand_specifiers(value)
    for entry in service.get("EnvironmentFile", []):
        optional = entry.startswith("-")
        path = os.path.join(root, entry.lstrip("-").lstrip("/"))
        if os.path.exists(path):
            read_environment_file(path, env)
        else:
            assert optional, f"unit needs {path}"
    client, peer = cluster.free_port(), cluster.free_port()
    log_file = os.path.join(work, "etcdpp.log")
    env.update({
        "ETCD_DATA_DIR": os.path.join(work, "data"),
        "ETCD_LISTEN_CLIENT_URLS": f"http://127.0.0.1:{client}",
        "ETCD_ADVERTISE_CLIENT_URLS": f"http://127.0.0.1:{client}",
        "ETCD_LISTEN_PEER_URLS": f"http://127.0.0.1:{peer}",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://127.0.0.1:{peer}",
        "ETCD_LOG_OUTPUTS": f"stderr,{log_file}",
    })
    argv = expand_exec_start(service["ExecStart"][0], env)
    if root != "/":
        argv[0] = os.path.join(root, argv[0].lstrip("/"))
    print("starting the unit's command:", shlex.join(argv))
    stderr_path = os.path.join(work, "stderr.log")
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(cluster.die_with_parent(argv), env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        serve_and_stop(proc, root, client, etcdctl, env["ETCD_NAME"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with open(stderr_path) as f:
            stderr_text = f.read()
        print("server stderr (last lines):\n" + "\n".join(stderr_text.splitlines()[-8:]))
    check_json_logs(stderr_text, "stderr")
    with open(log_file) as f:
        file_text = f.read()
    check_json_logs(file_text, log_file)
    assert file_text == stderr_text, "--log-outputs stderr,<file>: the file differs from stderr"


def serve_and_stop(proc, root, client, etcdctl, name):
    endpoint = f"127.0.0.1:{client}"
    ctl_env = dict(os.environ, ETCDCTL_API="3")

    def put():
        if proc.poll() is not None:
            raise cluster.ProcessExited(f"etcdpp exited {proc.returncode}")
        return run([etcdctl, "--endpoints", endpoint, "put", "pkg-key", "pkg-value"],
                   timeout=10, check=False, env=ctl_env).stdout.strip() == "OK"
    cluster.wait_until(put, timeout=30, what="etcdctl put on the packaged etcdpp")
    got = run([etcdctl, "--endpoints", endpoint, "get", "pkg-key"], env=ctl_env).stdout
    assert got == "pkg-key\npkg-value\n", repr(got)
    ours = run([os.path.join(root, "usr/bin/etcdppctl"), "--endpoints", endpoint,
                "get", "pkg-key", "--print-value-only"]).stdout
    assert ours == "pkg-value\n", repr(ours)
    members = run([etcdctl, "--endpoints", endpoint, "member", "list"], env=ctl_env).stdout
    assert f", {name}, " in members, f"member name is not ETCD_NAME={name}: {members}"

    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("etcdpp did not stop within 20s of SIGTERM")
    assert code == 0, f"etcdpp exited {code} after SIGTERM"


def check_json_logs(text, where):
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines, f"no JSON log lines on {where}"
    for line in lines:
        entry = json.loads(line)
        keys = list(entry)
        assert keys[:2] == ["level", "ts"] and "msg" in keys, f"{where}: {line}"
        assert entry["level"] in ("debug", "info", "warn", "error", "fatal"), line
        assert ETCD_TS.match(entry["ts"]), f"{where}: ts is not etcd's format: {line}"


def check_version_output(root, version):
    out = run([os.path.join(root, "usr/bin/etcdpp"), "--version"]).stdout.splitlines()
    assert out[0] == f"etcdpp Version: {version}", out
    keys = [line.split(":")[0] for line in out]
    assert keys == ["etcdpp Version", "Git SHA", "Compiler", "OS/Arch", "API version"], out
    assert out[-1] == "API version: 3.4", out
    ctl = run([os.path.join(root, "usr/bin/etcdppctl"), "version"]).stdout.splitlines()
    assert ctl[0].startswith("etcdctl version: 3.4.") and ctl[1] == "API version: 3.4", ctl
    assert ctl[2] == f"etcdppctl version: {version}", ctl


def choose_mode():
    forced = os.environ.get("ETCDPP_PACKAGE_TEST")
    if forced in ("install", "extract"):
        return forced, f"ETCDPP_PACKAGE_TEST={forced}"
    if os.geteuid() != 0:
        return "extract", "not root"
    if not shutil.which("apt-get"):
        return "extract", "no apt-get"
    status = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False).stdout
    if "installed" in status.split():
        return "extract", "an etcdpp package is installed already; it is left alone"
    return "install", "root, apt-get present, etcdpp not installed"


def install(deb):
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
         "-o", "DPkg::Lock::Timeout=120", os.path.abspath(deb)],
        timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    status = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE]).stdout
    assert status == "install ok installed", status
    for path in EXPECTED_FILES:
        assert os.path.exists("/" + path), f"installed package lacks /{path}"
    if shutil.which("systemd-analyze"):
        run(["systemd-analyze", "verify", "/" + UNIT])


def purge():
    run(["dpkg", "--purge", PACKAGE], timeout=120, check=False)
    status = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False).stdout
    assert "installed" not in status.split(), f"purge left {PACKAGE}: {status}"
    for path in EXPECTED_FILES:
        assert not os.path.exists("/" + path), f"purge left /{path}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpack", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    args = parser.parse_args()

    started = time.monotonic()
    mode, why = choose_mode()
    print(f"mode: {mode} ({why})")
    with tempfile.TemporaryDirectory(prefix="etcdpp-package-") as work:
        deb = build_package(args.cpack, args.build_dir, os.path.join(work, "cpack"))
        fields = package_name_parts(deb)
        print(f"Depends: {fields['Depends']}")
        check_contents(deb)
        if mode == "extract":
            root = os.path.join(work, "root")
            run(["dpkg-deb", "-x", deb, root])
            check_everything(root, fields, work, args.etcdctl)
        else:
            os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
            with open(LOCK_PATH, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    timed("install", install, deb)
                    check_everything("/", fields, work, args.etcdctl)
                except BaseException:
                    run(["dpkg", "--purge", PACKAGE], timeout=120, check=False)
                    raise
                timed("purge", purge)
    print(f"PASS ({mode}) in {time.monotonic() - started:.1f}s")


def check_everything(root, fields, work, etcdctl):
    timed("dependencies", check_dependencies, root, fields["Depends"])
    check_man_pages(root)
    check_version_output(root, fields["Version"])
    timed("unit command", start_unit_command, root, work, etcdctl)


def timed(what, fn, *args):
    started = time.monotonic()
    result = fn(*args)
    print(f"{what}: {time.monotonic() - started:.1f}s")
    return result


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, TimeoutError, cluster.ProcessExited) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
