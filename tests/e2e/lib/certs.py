"""Keys and certificates for the e2e tests, made with the openssl command.

Certificates are EC P-256 and valid for two days; a leaf certificate is for
127.0.0.1 (IP SAN) and good as a server and as a client certificate, so one
file serves a member's client port, its peer port and a client alike. Every
file of `name` is `<dir>/<name>.key`, `.crt` (and `.csr`, `.ext`, `.pub`).

    d = tempfile.mkdtemp()
    certs.make_ca(d, "ca")
    certs.make_leaf(d, "server", issuer=f"{d}/ca", cn="server")

Python 3 standard library only.
"""

import contextlib
import shutil
import subprocess
import sys
import tempfile
import unittest

LEAF_EXTENSIONS = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"


def run(cmd, timeout=30, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _openssl(args):
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is missing: apt-get install openssl")
    r = run(["openssl"] + args)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    return r


def make_ca(d, name, cn=None):
    """A self-signed CA certificate and its key; common name `cn` (default `name`)."""
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.crt", "-days", "2",
              "-subj", f"/CN={cn or name}"])


def make_leaf(d, name, issuer, cn):
    """A key and a certificate for common name `cn` signed by the CA whose
    files are `issuer`.crt and `issuer`.key (a path without the suffix)."""
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={cn}"])
    with open(f"{d}/{name}.ext", "w") as f:
        f.write(LEAF_EXTENSIONS)
    _openssl(["x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{issuer}.crt",
              "-CAkey", f"{issuer}.key", "-CAcreateserial", "-out", f"{d}/{name}.crt",
              "-days", "2", "-extfile", f"{d}/{name}.ext"])


def make_rsa_key_pair(d, name, bits=2048):
    """`name`.key (RSA private key, PEM) and `name`.pub (its public key)."""
    _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
              "-out", f"{d}/{name}.key"])
    _openssl(["pkey", "-in", f"{d}/{name}.key", "-pubout", "-out", f"{d}/{name}.pub"])


@contextlib.contextmanager
def temporary_dir(prefix, keep=False):
    """A fresh directory for the run's files, removed at the end unless `keep`."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def unittest_main(rest):
    """Runs the unittest tests of __main__ with the arguments left over from
    the script's own parser; returns the process exit code."""
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1
