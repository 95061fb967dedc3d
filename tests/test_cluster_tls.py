"""`--scheduler tls://...` (bench.cluster.security): the client's credentials from the --tls-*
options or Dask's configuration, checked before anything runs; a sweep on a TLS cluster made
with Dask's temporary self-signed credentials, and a client without them refused."""

from __future__ import annotations

import os
import socket

import pytest
from helpers import read_rows

from bench.cli import main
from bench.cluster import executor as cluster
from bench.cluster import security
from bench.errors import UsageError

pytest.importorskip("distributed")
pytest.importorskip("cryptography")  # Security.temporary() makes the certificates with it

import dask  # noqa: E402
from distributed.security import Security  # noqa: E402

TINY = ["--datasets", "synthetic:n=120", "--backends", "numpy-vec", "--epochs", "2"]
TINY += ["--batch-sizes", "16,64", "--losses", "cce", "--lrs", "0.5", "--threads", "1"]
NO_CONFIG = {  # Dask's configuration as on a machine where nobody set TLS up
    "distributed.comm.tls.ca-file": None,
    "distributed.comm.tls.client.cert": None,
    "distributed.comm.tls.client.key": None,
    "distributed.comm.require-encryption": None,
    "distributed.client.security-loader": None,
}


def _write(folder, made: Security, name: str) -> dict[str, str]:
    """A Security's in-memory credentials as the three files the options take."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca_file": folder / f"{name}-ca.pem",
        "cert": folder / f"{name}-cert.pem",
        "key": folder / f"{name}-key.pem",
    }
    paths["ca_file"].write_text(made.tls_ca_file)
    paths["cert"].write_text(made.tls_client_cert)
    paths["key"].write_text(made.tls_client_key)
    return {k: str(v) for k, v in paths.items()}


def _flags(files: dict[str, str]) -> list[str]:
    return [flag for k, v in files.items() for flag in (security.OPTIONS[k], v)]


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    """The cluster's temporary credentials as files, and another pair of the same kind that
    its CA never signed."""
    folder = tmp_path_factory.mktemp("tls")
    cluster_security = Security.temporary()
    return (
        cluster_security,
        _write(folder, cluster_security, "cluster"),
        _write(folder, Security.temporary(), "stranger"),
    )


@pytest.fixture
def no_dask_tls():
    with dask.config.set(NO_CONFIG):
        yield


def _run(args, capsys) -> tuple[int, str]:
    code = main(["run", *args])
    return code, capsys.readouterr().err


# -- the options, checked before anything runs ---------------------------------------------------


def test_tls_options_go_with_a_tls_address(credentials):
    _, files, _ = credentials
    spec = cluster.parse_scheduler("tls://10.0.0.5:8786", files)
    assert spec.address == "tls://10.0.0.5:8786"
    assert spec.tls == security.TlsFiles(files["ca_file"], files["cert"], files["key"])
    assert cluster.parse_scheduler("node7:8786", files).address == "tls://node7:8786"
    assert cluster.parse_scheduler("node7:8786").address == "tcp://node7:8786"
    assert cluster.parse_scheduler("local:2", files).tls == spec.tls
    assert cluster.parse_scheduler("tls://10.0.0.5:8786").tls is None  # Dask's configuration


def test_tls_options_with_a_plain_tcp_address_are_a_usage_error(credentials):
    _, files, _ = credentials
    with pytest.raises(UsageError, match=r"write --scheduler tls://10\.0\.0\.5:8786"):
        cluster.parse_scheduler("tcp://10.0.0.5:8786", files)


def test_a_missing_or_unusable_file_is_named(credentials, tmp_path):
    _, files, _ = credentials
    with pytest.raises(UsageError, match=r"--tls-cert .*nowhere\.pem: no such file"):
        security.tls_files({**files, "cert": str(tmp_path / "nowhere.pem")})
    with pytest.raises(UsageError, match=r"--tls-key .* is a folder"):
        security.tls_files({**files, "key": str(tmp_path)})
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match=r"--tls-ca-file .*pipe is not a regular file"):
        security.tls_files({**files, "ca_file": str(tmp_path / "pipe")})
    with pytest.raises(UsageError, match=r"--tls-ca-file missing"):
        security.tls_files({"cert": files["cert"], "key": files["key"]})


def test_files_that_are_not_pem_credentials_are_named(credentials, tmp_path):
    _, files, stranger = credentials
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    with pytest.raises(UsageError, match=r"--tls-ca-file .*notes\.txt holds no PEM certificate"):
        security.tls_files({**files, "ca_file": str(tmp_path / "notes.txt")})
    with pytest.raises(UsageError, match=r"certificate and its private key do not load"):
        security.tls_files({**files, "key": stranger["key"]})  # another certificate's key
    with pytest.raises(UsageError, match=r"with no --tls-key: .* do not load"):
        security.tls_files({"ca_file": files["ca_file"], "cert": files["cert"]})
    key_in_cert = tmp_path / "both.pem"
    key_in_cert.write_text(open(files["cert"]).read() + open(files["key"]).read())
    assert security.tls_files({"ca_file": files["ca_file"], "cert": str(key_in_cert)}).key is None


def test_bench_run_refuses_bad_tls_options_with_exit_2(credentials, tmp_path, capsys):
    _, files, _ = credentials
    out = ["--out", str(tmp_path / "out")]
    code, err = _run([*TINY, *out, *_flags(files)], capsys)
    assert code == 2 and "the --tls-* options are for a Dask scheduler" in err
    code, err = _run([*TINY, *out, "--scheduler", "tcp://127.0.0.1:1", *_flags(files)], capsys)
    assert code == 2 and "the --tls-* options are for a TLS scheduler" in err
    gone = {**files, "ca_file": str(tmp_path / "gone.pem")}
    code, err = _run([*TINY, *out, "--scheduler", "tls://127.0.0.1:1", *_flags(gone)], capsys)
    assert code == 2 and f"--tls-ca-file {tmp_path / 'gone.pem'}: no such file" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_tls_address_without_credentials_says_what_to_give(no_dask_tls, tmp_path, capsys):
    code, err = _run([*TINY, "--out", str(tmp_path), "--scheduler", "tls://127.0.0.1:1"], capsys)
    assert code == 2
    assert "--scheduler tls://127.0.0.1:1 needs this client's TLS credentials: give" in err
    assert "--tls-ca-file CA --tls-cert CERT --tls-key KEY" in err
    assert "distributed.comm.tls.ca-file" in err


# -- Dask's configuration ------------------------------------------------------------------------


def test_credentials_come_from_dask_configuration(credentials, no_dask_tls):
    _, files, _ = credentials
    config = {
        "distributed.comm.tls.ca-file": files["ca_file"],
        "distributed.comm.tls.client.cert": files["cert"],
        "distributed.comm.tls.client.key": files["key"],
    }
    with dask.config.set(config):
        made = security.client_security("tls://10.0.0.5:8786", None)
    assert (made.tls_ca_file, made.tls_client_cert, made.tls_client_key) == (
        files["ca_file"],
        files["cert"],
        files["key"],
    )
    assert made.require_encryption
    with dask.config.set({**config, "distributed.comm.tls.client.cert": "/nowhere/cert.pem"}):
        with pytest.raises(UsageError, match=r"distributed\.comm\.tls\.client\.cert /nowhere"):
            security.client_security("tls://10.0.0.5:8786", None)
    with dask.config.set({"distributed.client.security-loader": "some.module.loader"}):
        assert security.client_security("tls://10.0.0.5:8786", None) is None  # Dask asks it


def test_plain_address_where_dask_requires_encryption_is_a_usage_error(no_dask_tls):
    assert security.client_security("tcp://10.0.0.5:8786", None) is None  # Dask's default
    assert security.client_security(None, None) is None  # local:N as always
    with dask.config.set({"distributed.comm.require-encryption": True}):
        with pytest.raises(UsageError, match="requires encryption .* give the scheduler's tls://"):
            security.client_security("tcp://10.0.0.5:8786", None)


def test_options_make_every_role_of_a_local_cluster_tls(credentials):
    _, files, _ = credentials
    tls = security.tls_files(files)
    local = security.client_security(None, tls)
    remote = security.client_security("tls://10.0.0.5:8786", tls)
    assert local.require_encryption and remote.require_encryption
    for role in ("client", "scheduler", "worker"):
        assert local.get_tls_config_for_role(role)["cert"] == files["cert"]
    assert remote.tls_client_cert == files["cert"] and remote.tls_scheduler_cert is None


# -- a TLS cluster on 127.0.0.1 ------------------------------------------------------------------


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow -n 0 ...)
def test_sweep_on_a_tls_cluster_and_a_client_without_credentials_refused(
    credentials, no_dask_tls, tmp_path, capsys, monkeypatch
):
    import logging

    from distributed import Client, LocalCluster

    cluster_security, files, stranger = credentials
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 10.0)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        resources={cluster.RESOURCE: 1},
        dashboard_address=None,
        host="127.0.0.1",
        security=cluster_security,
        silence_logs=logging.CRITICAL,
    ) as tls_cluster:
        address = tls_cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        out = tmp_path / "out"

        code, err = _run([*TINY, "--out", str(out), "--scheduler", address, *_flags(files)], capsys)
        assert code == 0, err
        (run_dir,) = out.iterdir()
        rows = read_rows(run_dir)
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert {r["host"] for r in rows} == {socket.gethostname()}

        # Without the cluster's credentials: refused before anything runs, exit 2.
        plain = address.replace("tls://", "tcp://")
        refused = tmp_path / "refused"
        for scheduler, flags, says in [
            (address, _flags(stranger), "TLS certificate does not match"),
            (address, _flags(stranger), "signed by the CA that the scheduler was started with"),
            (address, [], "needs this client's TLS credentials"),
            (plain, [], "cannot reach the Dask scheduler at " + plain),
        ]:
            args = [*TINY, "--out", str(refused), "--scheduler", scheduler, *flags]
            code, err = _run(args, capsys)
            assert code == 2 and says in err, err
            assert "Traceback" not in err
        assert not refused.exists()

        # Nor does Dask's own client get in with plain TCP or another CA's certificate.
        for target, other in [(plain, None), (address, Security.temporary())]:
            with pytest.raises(OSError):
                Client(target, security=other, timeout=5, set_as_default=False)


@pytest.mark.slow  # a real cluster: .ci/run runs these apart (pytest -m slow -n 0 ...)
def test_local_cluster_with_tls_options_listens_on_tls(credentials, tmp_path, capsys, monkeypatch):
    _, files, _ = credentials
    seen = []
    close = cluster.DaskExecutor.close

    def spy(self):
        if self.client is not None:
            seen.append(self.client.scheduler.address)
        close(self)

    monkeypatch.setattr(cluster.DaskExecutor, "close", spy)
    out = tmp_path / "out"
    code, err = _run([*TINY, "--out", str(out), "--scheduler", "local:1", *_flags(files)], capsys)
    assert code == 0, err
    assert [r["status"] for r in read_rows(next(out.iterdir()))] == ["ok", "ok"]
    assert seen and all(a.startswith("tls://127.0.0.1:") for a in seen)


def test_the_worker_hint_for_a_tls_scheduler_carries_the_tls_flags():
    """A TLS user following the "start a worker" hint gets a worker that can connect."""
    tls = cluster.DaskExecutor(cluster.parse_scheduler("tls://sched:8786"), note=print)
    plain = cluster.DaskExecutor(cluster.parse_scheduler("tcp://sched:8786"), note=print)
    assert tls.worker_command().startswith("dask worker tls://sched:8786 ")
    assert "--tls-ca-file" in tls.worker_command() and "--tls-key" in tls.worker_command()
    assert "--tls" not in plain.worker_command()
