"""TLS for `--scheduler`: a Dask cluster that lets in only those who hold its certificates.

A Dask scheduler runs whatever Python its clients send, on every worker: anyone who reaches a
plain-TCP scheduler's port can run code there. A `tls://` scheduler (`dask scheduler
--tls-ca-file CA --tls-cert CERT --tls-key KEY`) lets in only clients and workers that show a
certificate signed by its CA, and encrypts what they send.

The client's credentials come from `bench run --tls-ca-file --tls-cert [--tls-key]` or, when
none of those is given, from Dask's own configuration (`distributed.comm.tls.ca-file`,
`distributed.comm.tls.client.cert` and `.key`), which `distributed.security.Security()` reads.
With `local:N` the options start the LocalCluster itself with TLS, the one certificate serving
the scheduler, its workers and this client. Every problem found is a UsageError (exit 2)
before anything runs.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
from collections.abc import Mapping

from bench.errors import UsageError, require_readable_file

OPTIONS = {"ca_file": "--tls-ca-file", "cert": "--tls-cert", "key": "--tls-key"}
CONFIG = {  # where Dask's configuration keeps a client's credentials
    "ca_file": "distributed.comm.tls.ca-file",
    "cert": "distributed.comm.tls.client.cert",
    "key": "distributed.comm.tls.client.key",
}
ENCRYPTION_KEY = "distributed.comm.require-encryption"
LOADER_KEY = "distributed.client.security-loader"  # a function that gives a client's Security
HOW = (
    "--tls-ca-file CA --tls-cert CERT --tls-key KEY (the CA certificate the scheduler was "
    "started with, and this client's certificate and key, signed by that CA), or set them in "
    f"Dask's configuration ({CONFIG['ca_file']}, {CONFIG['cert']}, {CONFIG['key']})"
)


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """A client's TLS credentials, as files (PEM): checked to exist, be readable and load."""

    ca_file: str
    cert: str
    key: str | None = None  # None: the key is in the cert file


def tls_files(given: Mapping[str, str | None] | None) -> TlsFiles | None:
    """The `--tls-*` options ({"ca_file", "cert", "key"}, unset ones None or absent), checked;
    None when none is given."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = set(given) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown TLS settings {sorted(unknown)}: use {sorted(OPTIONS)}")
    if not given:
        return None
    missing = [OPTIONS[k] for k in ("ca_file", "cert") if k not in given]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} missing: a TLS client needs the CA certificate and its own "
            "certificate (--tls-ca-file CA --tls-cert CERT, and --tls-key KEY unless the key is "
            "in the certificate file)"
        )
    for name, path in given.items():
        require_readable_file(OPTIONS[name], path, "give the PEM file")
    files = TlsFiles(given["ca_file"], given["cert"], given.get("key"))
    check_pem(files, OPTIONS)
    return files


def scheme(text: str, files: TlsFiles | None) -> str:
    """The scheduler address `text` with its protocol: as written; without one, tls:// when
    TLS options are given, else tcp://. TLS options with another protocol are a UsageError."""
    if "://" not in text:
        return f"{'tls' if files else 'tcp'}://{text}"
    if files is not None and not text.lower().startswith("tls://"):
        raise UsageError(
            f"--scheduler {text}: the --tls-* options are for a TLS scheduler; write "
            f"--scheduler tls://{text.split('://', 1)[1]} (a scheduler started with "
            "`dask scheduler --tls-ca-file ... --tls-cert ... --tls-key ...`), or drop them"
        )
    return text


def client_security(address: str | None, files: TlsFiles | None):
    """The `distributed.security.Security` for a Client of `address` (None: a LocalCluster),
    or None where Dask's own default applies (plain TCP, or local:N without TLS options).

    A tls:// address without TLS options takes the credentials from Dask's configuration (or
    its `distributed.client.security-loader`); with neither, a UsageError says what to give."""
    import dask
    from distributed.security import Security

    if files is not None:
        roles = ("client",) if address is not None else ("client", "scheduler", "worker")
        fields = {}
        for role in roles:
            fields[f"tls_{role}_cert"] = files.cert
            if files.key is not None:
                fields[f"tls_{role}_key"] = files.key
        return Security(require_encryption=True, tls_ca_file=files.ca_file, **fields)
    if address is None:
        return None
    tls = address.lower().startswith("tls://")
    try:
        configured = Security()
    except (ValueError, TypeError) as exc:  # e.g. a TLS version Dask does not know
        raise UsageError(f"Dask's TLS configuration is not usable: {exc}") from None
    if not tls:
        if configured.require_encryption:
            raise UsageError(
                f"--scheduler {address}: Dask's configuration requires encryption "
                f"({ENCRYPTION_KEY}): give the scheduler's tls:// address"
            )
        return None
    given = {
        "ca_file": configured.tls_ca_file,
        "cert": configured.tls_client_cert,
        "key": configured.tls_client_key,
    }
    if not (given["ca_file"] and given["cert"]):
        if dask.config.get(LOADER_KEY, None):
            return None  # the Client asks the configured loader
        raise UsageError(f"--scheduler {address} needs this client's TLS credentials: give {HOW}")
    for name, value in given.items():
        if value and "\n" not in value:  # a PEM text in the configuration is no file
            require_readable_file(CONFIG[name], value, "give the PEM file")
    try:
        configured.get_connection_args("client")  # loads the CA, certificate and key
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UsageError(
            f"the TLS credentials in Dask's configuration ({CONFIG['ca_file']}, "
            f"{CONFIG['cert']}, {CONFIG['key']}) do not load: {_ssl_reason(exc)}"
        ) from None
    configured.require_encryption = True
    return configured


def refused_hint(address: str | None) -> str:
    """What to check when a scheduler cannot be reached: for TLS, the credentials."""
    if address is not None and address.lower().startswith("tls://"):
        return (
            "check that it runs, and that this client's certificate is signed by the CA that "
            "the scheduler was started with (`dask scheduler --tls-ca-file`)"
        )
    return (
        "start one with `dask scheduler` and give the address it prints (tls://... for a "
        "scheduler started with --tls-ca-file, --tls-cert and --tls-key)"
    )


def check_pem(files: TlsFiles, names: Mapping[str, str]) -> None:
    """The CA file holds a PEM certificate and the certificate and key load as a pair (an
    encrypted key does not: Dask loads keys without a passphrase)."""
    try:
        context = ssl.create_default_context(cafile=files.ca_file)
    except (ssl.SSLError, ValueError) as exc:
        raise UsageError(
            f"{names['ca_file']} {files.ca_file} holds no PEM certificate ({_ssl_reason(exc)})"
        ) from None
    try:
        context.load_cert_chain(files.cert, files.key, password=lambda: b"")
    except (ssl.SSLError, ValueError) as exc:
        key = f"{names['key']} {files.key}" if files.key else f"no {names['key']}"
        raise UsageError(
            f"{names['cert']} {files.cert} with {key}: the certificate and its private key do "
            f"not load ({_ssl_reason(exc)}); give a PEM certificate and its unencrypted key "
            f"({names['key']}, unless the key is in the certificate file)"
        ) from None


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or getattr(exc, "strerror", None) or exc)
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", text).strip() or type(exc).__name__
