"""No one else drives the campaign: TLS with per-launch credentials on SLURM, a loopback dashboard.

The handshakes here are real: a Dask scheduler listening on TLS on the loopback, with the
credentials a SLURM launch makes, refuses a client without them."""
import os
import socket
import ssl
import stat

import pytest

from campaign import config, slurm
from campaign.security import credentials, tls_directory


def slurm_cfg(tmp_path, **settings):
    return config.load("smoke", overrides={"store": str(tmp_path / "s.zarr"),
                                           "cluster": {"kind": "slurm", "slurm": settings}})


def test_the_dashboard_listens_on_the_loopback_by_default():
    for preset in config.PRESETS:
        assert config.load(preset, overrides={"mpi": {"ranks": 1}})["cluster"]["dashboard_address"] == "127.0.0.1:8787"


def test_worker_job_scripts_speak_tls_with_the_launchs_credentials(tmp_path):
    cfg = slurm_cfg(tmp_path, gpu_jobs=1)
    d = tls_directory(cfg)
    for pool, script in slurm.job_scripts(cfg).items():
        assert "tls://<scheduler>:8786" in script and "--protocol tls://" in script, pool
        for option, name in (("--tls-ca-file", "cert.pem"), ("--tls-cert", "cert.pem"), ("--tls-key", "key.pem")):
            assert f"{option} {os.path.join(d, name)}" in script, (pool, option)


def test_site_certificates_or_plain_tcp_by_choice(tmp_path):
    site = {"ca_file": "/site/ca.pem", "cert": "/site/me.pem", "key": "/site/me.key"}
    script = slurm.job_scripts(slurm_cfg(tmp_path, security=site))["cpu"]
    assert "--tls-ca-file /site/ca.pem --tls-cert /site/me.pem --tls-key /site/me.key" in script
    plain = slurm.job_scripts(slurm_cfg(tmp_path, security=False))["cpu"]
    assert "tcp://<scheduler>" in plain and "--tls" not in plain
    with pytest.raises(config.ConfigError, match="cluster.slurm.security"):
        slurm_cfg(tmp_path, security={"cert": "/site/me.pem"})
    with pytest.raises(FileNotFoundError, match="/site/ca.pem"):
        with credentials(slurm_cfg(tmp_path, security=site)):
            pass


def test_credentials_are_the_owners_alone_and_go_with_the_launch(tmp_path):
    cfg = slurm_cfg(tmp_path)
    d = tls_directory(cfg)
    with credentials(cfg) as sec:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert sorted(os.listdir(d)) == ["cert.pem", "key.pem"]
        for name in os.listdir(d):
            assert stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode) == 0o600
        assert sec.get_connection_args("client")["require_encryption"]
    assert not os.path.exists(d)


def raw_tls_handshake(address: str, certfile=None, keyfile=None) -> None:
    """A TLS handshake with the scheduler, as any user on the network could try it."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"\0" * 8)  # TLS 1.3: the server's verdict on the client certificate comes with data
            tls.recv(1)


def test_a_client_without_the_credentials_is_refused_during_the_handshake(tmp_path):
    from distributed import Client, LocalCluster
    from distributed.security import Security

    cfg = slurm_cfg(tmp_path)
    with credentials(cfg) as sec, LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                              protocol="tls://", security=sec, host="127.0.0.1",
                                              dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with Client(address, security=sec, timeout=10) as client:  # the owner's status, a worker
            assert client.submit(lambda: 6 * 7).result() == 42
        with pytest.raises(Exception, match="TLS"):  # another user's certificate
            Client(address, security=Security.temporary(), timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)):  # no client certificate at all
            raw_tls_handshake(address)
        stranger = Security.temporary()
        for name, text in (("c.pem", stranger.tls_client_cert), ("k.pem", stranger.tls_client_key)):
            (tmp_path / name).write_text(text)
        with pytest.raises((ssl.SSLError, ConnectionError)):  # a self-made one
            raw_tls_handshake(address, tmp_path / "c.pem", tmp_path / "k.pem")
