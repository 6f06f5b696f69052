"""The kernel a run uses: the ``perflab`` kernelspec, a kernel manager on unix sockets with its
own environment and log, and the kill of kernels an interrupted run leaves behind."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from perflab.settings import Settings

if TYPE_CHECKING:
    pass


__all__ = [
    "KERNEL_NAME",
    "ensure_kernelspec",
    "kernel_environ",
    "kernel_manager_class",
    "kill_kernels",
]


KERNEL_NAME = "perflab"


def ensure_kernelspec(name: str = KERNEL_NAME) -> str:
    """Install (once) a kernelspec named ``name`` that runs this interpreter, so notebooks run
    in the environment perflab is installed in whichever Jupyter starts them."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]) == Path(sys.executable):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=name, display_name="Python (perflab)", prefix=sys.prefix)
    except PermissionError:  # a system-wide interpreter: fall back to the user's kernels
        install(kernel_name=name, display_name="Python (perflab)", user=True)
    return name


def kernel_manager_class(
    log: IO[bytes], started: list | None = None, env: Mapping[str, str] | None = None
) -> type:
    """A kernel manager class over unix sockets whose kernels log to ``log``, start with
    ``env`` (default: this process's environment) and are appended to ``started``."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """Kernel over unix sockets (no TCP port, and none of ipykernel 7's 'running over TCP
        without encryption' warning); the kernel process's own stdout/stderr (not the notebook's
        output, which travels over the sockets) go to ``log`` rather than the terminal."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            # Socket paths of our own: the default ("kernel-ipc-N" in the working directory)
            # is shared by every kernel started there, so two at once (a sweep) cross wires.
            kwargs.setdefault(
                "ip", os.path.join(tempfile.gettempdir(), f"perflab-{uuid.uuid4().hex[:12]}")
            )
            super().__init__(**kwargs)
            if started is not None:
                started.append(self)

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            if env is not None:  # passed to the kernel; os.environ is left alone
                kw.setdefault("env", dict(env))
            await super().start_kernel(**kw)

    return IPCKernelManager


def kernel_environ(settings: Settings) -> dict[str, str]:
    """The variables a kernel needs to resolve the same settings as this process. Paths go as
    absolute paths: a kernel runs in the notebook's folder, where a relative one (``perflab
    report --out outputs/x``) named another place, and its suites published where the report
    never looked."""
    env = {
        "PERFLAB_STATE_DIR": str(Path(settings.state_dir).absolute()),
        "PERFLAB_OUTPUTS": str(Path(settings.outputs_dir).absolute()),
        "PERFLAB_KEY_PREFIX": settings.key_prefix,
        "PERFLAB_SCHEMA": settings.schema,
        "PERFLAB_RESULTS": str(Path(settings.results_dir or settings.outputs_dir).absolute()),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # debugpy's frozen-modules note at kernel start
    }
    for variable, value in (
        ("PERFLAB_REDIS_URL", settings.redis_url),
        ("PERFLAB_DATABASE_URL", settings.database_url),
        ("PERFLAB_READ_DATABASE_URL", settings.read_database_url),
        ("PERFLAB_HISTORY_URL", settings.history_url),
    ):
        if value is not None:
            env[variable] = value
    history = settings.history_url
    if history and "://" not in history:  # a SQLite file path, relative to this process
        env["PERFLAB_HISTORY_URL"] = str(Path(history).expanduser().absolute())
    return env


def kill_kernels(managers: list) -> None:
    """Kill the kernels an interrupted run leaves behind (nbclient's own cleanup never runs when
    the interrupt lands in the event loop)."""
    for manager in managers:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
