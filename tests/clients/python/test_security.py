"""The Python clients against samplerd and runnerd with TLS and bearer tokens:
certificates made here with the openssl command line; mutual TLS with the
client's certificate and the right token works, a missing token is
UNAUTHENTICATED, a token also goes in plaintext, and a generation over TLS
with tokens on both hops equals the plaintext one."""

import os
import shutil
import subprocess
import tempfile

import grpc
import pytest

from conftest import Server
from entroserve import EntroserveError, RunnerClient, SamplerClient

TOKEN = "py-tok-31f0"
SAMPLER_TOKEN = "py-sampler-tok-77a1"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def signed(d, ca, name, cn, extensions):
    """A key and certificate for `cn`, signed by the CA `ca`."""
    with open(f"{d}/{name}.ext", "w") as f:
        f.write(extensions)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout",
            f"{d}/{name}.key", "-out", f"{d}/{name}.csr")
    openssl("x509", "-req", "-days", "2", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{ca}.pem",
            "-CAkey", f"{d}/{ca}.key", "-CAcreateserial", "-out", f"{d}/{name}.pem",
            "-extfile", f"{d}/{name}.ext")


@pytest.fixture(scope="module")
def certs():
    """A folder with ca.pem, server.{pem,key} (localhost, 127.0.0.1),
    client.{pem,key} and token files."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tempfile.mkdtemp(prefix="entroserve_py_certs_")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
            "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    signed(d, "ca", "server", "localhost",
           "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    signed(d, "ca", "client", "client", "extendedKeyUsage=clientAuth\n")
    for name, token in (("tokens", TOKEN), ("sampler_tokens", SAMPLER_TOKEN)):
        with open(f"{d}/{name}", "w") as f:
            f.write(token + "\n")
    yield d
    shutil.rmtree(d)


def server_tls(d, tokens="tokens"):
    return [f"--tls_cert_file={d}/server.pem", f"--tls_key_file={d}/server.key",
            f"--tls_client_ca_file={d}/ca.pem", f"--auth_token_file={d}/{tokens}"]


def client_tls(d):
    return dict(tls_ca_file=f"{d}/ca.pem", tls_cert_file=f"{d}/client.pem",
                tls_key_file=f"{d}/client.key")


@pytest.fixture(scope="module")
def secure_samplerd(certs):
    server = Server("samplerd", ["--host=127.0.0.1", "--port=0", "--workers=1"]
                    + server_tls(certs, "sampler_tokens"))
    yield server
    server.stop()


def test_sampler_client_with_mutual_tls_and_a_token(certs, secure_samplerd):
    with SamplerClient(secure_samplerd.address, token=SAMPLER_TOKEN, **client_tls(certs)) as c:
        assert "greedy" in [s.name for s in c.samplers()]
    with SamplerClient(secure_samplerd.address, **client_tls(certs)) as c:
        with pytest.raises(EntroserveError) as error:
            c.samplers()
        assert error.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "this server requires a token" in str(error.value)
    with SamplerClient(secure_samplerd.address, token="wrong", **client_tls(certs)) as c:
        with pytest.raises(EntroserveError) as error:
            c.samplers()
        assert error.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_token_goes_in_plaintext_too(certs):
    server = Server("samplerd", ["--host=127.0.0.1", "--port=0", "--workers=1",
                                 f"--auth_token_file={certs}/tokens"])
    try:
        with SamplerClient(server.address, token=TOKEN) as c:
            assert "greedy" in [s.name for s in c.samplers()]
        with SamplerClient(server.address) as c:
            with pytest.raises(EntroserveError) as error:
                c.samplers()
            assert error.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()


def test_half_a_client_certificate_is_refused(certs):
    with pytest.raises(EntroserveError, match="tls_cert_file and tls_key_file go together"):
        SamplerClient("127.0.0.1:1", tls_ca_file=f"{certs}/ca.pem",
                      tls_cert_file=f"{certs}/client.pem")


@pytest.mark.skipif(not os.environ.get("ENTROSERVE_RUNNERD"), reason="built without runnerd")
def test_runner_client_over_tls_and_tokens_on_both_hops_equals_plaintext(certs, secure_samplerd):
    model = os.environ["ENTROSERVE_MODEL"]
    common = [f"--model={model}", "--host=127.0.0.1", "--port=0", "--threads=1"]
    secure = Server("runnerd", common + server_tls(certs)[:2] + [
        f"--auth_token_file={certs}/tokens", f"--sampler={secure_samplerd.address}",
        f"--sampler_tls_ca_file={certs}/ca.pem", f"--sampler_tls_cert_file={certs}/client.pem",
        f"--sampler_tls_key_file={certs}/client.key",
        f"--sampler_auth_token_file={certs}/sampler_tokens"], ready="runnerd serving")
    plain = Server("runnerd", common, ready="runnerd serving")
    try:
        with RunnerClient(secure.address, timeout=120, token=TOKEN,
                          tls_ca_file=f"{certs}/ca.pem", tls_server_name="localhost") as s, \
                RunnerClient(plain.address, timeout=120) as p:
            want = p.generate("The jury said", seed=4, max_new_tokens=12,
                              ignore_eos=True).result()
            got = s.generate("The jury said", seed=4, max_new_tokens=12, ignore_eos=True).result()
            assert len(got.token_ids) == 12
            assert got.token_ids == want.token_ids
            assert got.text == want.text
    finally:
        secure.stop()
        plain.stop()
