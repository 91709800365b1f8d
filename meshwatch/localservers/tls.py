"""A throwaway certificate authority for TLS tests: server and client certificates.

Everything is made with the ``openssl`` command: unencrypted P-256 keys and certificates valid
for 2 days, for tests and the demo only. The CA key stays beside the CA certificate so that
`make_client_certificate` can sign client certificates for brokers that require them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from meshwatch.localservers.process import _run_tool, find_binary

_DAYS = "2"  # long enough for any test run, short enough that a leaked key soon expires
# a common name that is also a safe file name and needs no escaping in openssl's -subj
_CN = re.compile(r"[A-Za-z0-9_.-]+")
_NEWKEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener.

    Attributes
    ----------
    ca : Path
        Certificate of the authority that signed ``cert``; clients verify against it, and a
        broker that requires client certificates verifies them against it too.
    cert : Path
        Server certificate.
    key : Path
        Unencrypted private key of ``cert``.
    ca_key : Path, optional
        Unencrypted private key of ``ca``, when known (`make_test_certificates` sets it);
        `make_client_certificate` needs it.
    """

    ca: Path
    cert: Path
    key: Path
    ca_key: Path | None = None


def make_test_certificates(dir: Path) -> TlsFiles:
    """Create a throwaway CA and a server certificate for ``localhost`` and 127.0.0.1.

    Both are valid for 2 days; keys are unencrypted P-256 keys.

    Parameters
    ----------
    dir : Path
        Directory for ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key`` (created).

    Returns
    -------
    TlsFiles
        The CA certificate and key, the server certificate and the server key.

    Raises
    ------
    MissingBinaryError
        If the ``openssl`` command is not installed.
    ServerError
        If openssl fails.
    """
    openssl = str(find_binary("openssl"))
    dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = dir / "ca.key", dir / "ca.crt"
    _run_tool(
        [openssl, "req", "-x509", *_NEWKEY, "-keyout", str(ca_key), "-out", str(ca_crt),
         "-days", _DAYS, "-subj", "/CN=meshwatch test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        "openssl (CA certificate)",
    )  # fmt: skip
    ca_key.chmod(0o600)
    crt, key = _issue(
        openssl,
        dir,
        "server",
        "localhost",
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        ca_crt,
        ca_key,
    )
    return TlsFiles(ca=ca_crt, cert=crt, key=key, ca_key=ca_key)


def make_client_certificate(dir: Path, ca: TlsFiles, cn: str) -> tuple[Path, Path]:
    """Create a client certificate and key signed by the CA of `make_test_certificates`.

    The certificate is for client authentication only (``extendedKeyUsage=clientAuth``) and
    valid for 2 days; its subject is ``CN=<cn>``, which a broker may use as the user name.

    Parameters
    ----------
    dir : Path
        Directory for ``<cn>.crt`` and ``<cn>.key`` (created).
    ca : TlsFiles
        What `make_test_certificates` returned: its ``ca`` and ``ca_key`` sign the certificate.
    cn : str
        Common name of the client, e.g. ``"meshwatch-ingest"``: letters, digits and ``_.-``
        (it also names the files).

    Returns
    -------
    tuple of (Path, Path)
        The client certificate and its unencrypted private key.

    Raises
    ------
    ValueError
        If ``ca`` has no ``ca_key``, or ``cn`` is empty, has other characters or would
        overwrite a file of ``ca`` (``"ca"`` or ``"server"`` in the same directory).
    MissingBinaryError
        If the ``openssl`` command is not installed.
    ServerError
        If openssl fails.
    """
    if ca.ca_key is None:
        raise ValueError(
            f"cannot sign a client certificate with {ca.ca}: ca_key is not set; "
            "pass the TlsFiles that make_test_certificates returned"
        )
    if not _CN.fullmatch(cn):
        raise ValueError(f"Invalid cn: {cn!r}: use letters, digits and _.- only")
    taken = {path.resolve() for path in (ca.ca, ca.ca_key, ca.cert, ca.key)}
    if {(dir / f"{cn}.crt").resolve(), (dir / f"{cn}.key").resolve()} & taken:
        raise ValueError(f"Invalid cn: {cn!r} would overwrite the CA or server files in {dir}")
    openssl = str(find_binary("openssl"))
    dir.mkdir(parents=True, exist_ok=True)
    return _issue(
        openssl,
        dir,
        cn,
        cn,
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        ca.ca,
        ca.ca_key,
    )


def _issue(
    openssl: str, dir: Path, stem: str, cn: str, usage: str, ca_crt: Path, ca_key: Path
) -> tuple[Path, Path]:
    """Make ``dir/<stem>.key`` and ``dir/<stem>.crt`` for ``CN=<cn>`` with the ``usage`` lines.

    ``usage`` holds the extension lines that set the certificate apart (key usage, extended key
    usage, names); the constraints and key identifiers every leaf gets are added here.
    """
    key, csr, crt = dir / f"{stem}.key", dir / f"{stem}.csr", dir / f"{stem}.crt"
    ext = dir / f"{stem}.ext"
    _run_tool(
        [openssl, "req", "-new", *_NEWKEY, "-keyout", str(key), "-out", str(csr),
         "-subj", f"/CN={cn}"],
        f"openssl ({stem} key)",
    )  # fmt: skip
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        + usage
        + "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n",
        encoding="utf-8",
    )
    _run_tool(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", _DAYS, "-extfile", str(ext)],
        f"openssl ({stem} certificate)",
    )  # fmt: skip
    key.chmod(0o600)
    return crt, key
