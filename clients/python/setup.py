"""Build hook: generates entroserve/_proto from the repository's proto/ into the
build tree (metadata lives in pyproject.toml).

The proto folder is ../../proto, or ENTROSERVE_PROTO_DIR; protoc and the gRPC
Python plugin come from PROTOC and GRPC_PYTHON_PLUGIN, else PATH.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate_stubs  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        proto_dir = os.environ.get("ENTROSERVE_PROTO_DIR", os.path.join(HERE, "..", "..", "proto"))
        if not os.path.isdir(proto_dir):
            raise SystemExit(f"entroserve: no proto folder at {proto_dir} (build from the "
                             "repository's clients/python, or set ENTROSERVE_PROTO_DIR)")
        generate_stubs.main(["--out", self.build_lib, "--proto_dir", proto_dir])


setup(cmdclass={"build_py": BuildPyWithStubs})
