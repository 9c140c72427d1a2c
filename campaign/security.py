"""TLS between the launcher's Dask scheduler, its SLURM worker jobs and ``campaign status``.

A Dask scheduler runs whatever a connected client submits, as the campaign's owner; on a
cluster its port is reachable by every user of the network. So on SLURM every connection is
TLS with mutual authentication (``cluster.slurm.security``):

- ``true`` (default): a self-signed key and certificate made per launch (distributed's
  ``Security.temporary``), written to ``<store>.logs/tls/`` (directory 0700, files 0600: only
  the owner can read them, on the file system the compute nodes share with the launcher), and
  removed when the launch ends. Whoever cannot read those files cannot connect.
- ``{ca_file, cert, key}``: the site's own certificates (PEM paths).
- ``false``: plain TCP, for a trusted private cluster.

The local cluster needs none of this: its scheduler and worker live in the launcher's process
and talk in-process; only the dashboard listens, on the loopback by default.
"""
from __future__ import annotations

import contextlib
import os
import shutil

SITE_KEYS = ("ca_file", "cert", "key")


def tls_directory(cfg: dict) -> str:
    """Where a launch's temporary credentials live: ``<store>.logs/tls``."""
    from store import layout

    return layout.log_path(cfg["store"], "tls")


def _files(cfg: dict) -> dict[str, str] | None:
    """PEM paths {ca_file, cert, key} of the configured credentials; None for plain TCP."""
    setting = cfg["cluster"]["slurm"]["security"]
    if setting is False:
        return None
    if isinstance(setting, dict):
        return {k: os.path.abspath(os.path.expanduser(setting[k])) for k in SITE_KEYS}
    d = tls_directory(cfg)
    return {"ca_file": os.path.join(d, "cert.pem"), "cert": os.path.join(d, "cert.pem"),
            "key": os.path.join(d, "key.pem")}


def security(cfg: dict):
    """The ``distributed.security.Security`` of the scheduler, the workers and clients (every role
    the same credentials), reading PEM files; None for plain TCP. Makes no files."""
    files = _files(cfg)
    if files is None:
        return None
    from distributed.security import Security

    roles = {
        f"tls_{role}_{part}": files[part] for role in ("client", "scheduler", "worker") for part in ("cert", "key")
    }
    return Security(require_encryption=True, tls_ca_file=files["ca_file"], **roles)


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@contextlib.contextmanager
def credentials(cfg: dict):
    """For the block, the launch's Security (None: plain TCP). With ``security: true`` it makes a
    temporary key and certificate in ``tls_directory`` (0700 / 0600) and removes them afterwards."""
    setting = cfg["cluster"]["slurm"]["security"]
    if setting is not True:
        missing = [p for p in (_files(cfg) or {}).values() if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"'cluster.slurm.security': {', '.join(missing)} not found")
        yield security(cfg)
        return
    from distributed.security import Security

    d = tls_directory(cfg)
    shutil.rmtree(d, ignore_errors=True)  # a killed launch's: no scheduler of its is listening
    os.makedirs(os.path.dirname(d), exist_ok=True)
    os.mkdir(d, 0o700)
    try:
        made = Security.temporary()
        _write_private(os.path.join(d, "cert.pem"), made.tls_scheduler_cert)
        _write_private(os.path.join(d, "key.pem"), made.tls_scheduler_key)
        yield security(cfg)
    finally:
        shutil.rmtree(d, ignore_errors=True)
