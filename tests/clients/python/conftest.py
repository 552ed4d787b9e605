"""Real samplerd and runnerd processes on loopback for the Python client's
tests. The binaries and the model come in the environment (clients/python.cmake
sets them): ENTROSERVE_SAMPLERD, ENTROSERVE_RUNNERD, ENTROSERVE_SAMPLERCTL,
ENTROSERVE_MODEL; PYTHONPATH holds the built package (build/python)."""

import os
import select
import subprocess
import threading
import time

import pytest

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def binary(name):
    path = os.environ.get(f"ENTROSERVE_{name.upper()}")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"ENTROSERVE_{name.upper()} must name the built {name} (run through ctest)")
    return path


def log_dir():
    path = os.environ.get("ENTROSERVE_TEST_TMP") or os.path.join(os.getcwd(), "python_tests")
    os.makedirs(path, exist_ok=True)
    return path


class Server:
    """A server process started with --port 0: waits for its "NAME listening
    on HOST:PORT" line (and `ready` line, when given), then drains its stdout."""

    def __init__(self, name, args, ready=None):
        self.name = name
        self.log_path = os.path.join(log_dir(), f"{name}-{os.getpid()}.log")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([binary(name)] + args, stdout=subprocess.PIPE,
                                        stderr=self._log)
        self.address = None
        output = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        prefix = f"{name} listening on ".encode()
        while time.monotonic() < deadline:
            lines = output.split(b"\n")
            done = [l for l in lines[:-1] if l.startswith(prefix)]
            if done and self.address is None:
                host_port = done[0][len(prefix):].decode()
                self.address = "127.0.0.1:" + host_port.rsplit(":", 1)[1]
            if self.address and (ready is None or any(l.startswith(ready.encode())
                                                      for l in lines[:-1])):
                break
            readable, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                output += chunk
        else:
            self.stop()
            pytest.fail(f"{name} did not start in {START_TIMEOUT_S}s; stdout: {output!r}")
        if not self.address or (ready and ready.encode() not in output):
            self.stop()
            pytest.fail(f"{name} exited before it was ready; stdout: {output!r}; "
                        f"log {self.log_path}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            while os.read(self.process.stdout.fileno(), 4096):
                pass
        except OSError:
            pass

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def samplerd():
    server = Server("samplerd", ["--host=127.0.0.1", "--port=0", "--workers=2"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def runnerd(samplerd):
    """runnerd on the bundled tiny model, sampling through the samplerd above."""
    model = os.environ.get("ENTROSERVE_MODEL", "")
    if not os.path.isdir(model):
        pytest.fail(f"ENTROSERVE_MODEL must name the model folder (models/tiny), got {model!r}")
    server = Server("runnerd", [f"--model={model}", "--host=127.0.0.1", "--port=0",
                                "--threads=1", f"--sampler={samplerd.address}"],
                    ready="runnerd serving")
    yield server
    server.stop()


def run_samplerctl(args):
    """samplerctl's stdout; fails the test with its stderr on a non-zero exit."""
    result = subprocess.run([binary("samplerctl")] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"samplerctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout
