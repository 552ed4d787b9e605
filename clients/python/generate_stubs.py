#!/usr/bin/env python3
"""Generates the package's protobuf messages and gRPC stubs from proto/.

protoc's Python output names its imports after the proto files' own paths
(`from sampler.v1 import tensor_pb2`), which would make `sampler` and `runner`
top-level packages of the interpreter. Instead of putting the generated root on
sys.path, the imports between our generated modules are rewritten to live inside
the package (`from entroserve._proto.sampler.v1 import tensor_pb2`). The proto
file names registered in the descriptor pool stay `sampler/v1/sampler.proto`
etc., as the servers' reflection reports them.

Used by setup.py (pip install) and by the CMake target in clients/python.cmake:

  generate_stubs.py --out DIR [--proto_dir proto] [--protoc protoc]
                    [--grpc_python_plugin PATH] [--package_src src/entroserve]

writes DIR/entroserve/_proto/{sampler,runner}/v1/*_pb2(_grpc).py (and, with
--package_src, copies the package's own modules into DIR/entroserve first, so
that DIR is a complete importable package). protoc and the plugin default to the
PROTOC and GRPC_PYTHON_PLUGIN environment variables, else to `protoc` and
`grpc_python_plugin` on PATH (Debian's protobuf-compiler and
protobuf-compiler-grpc).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "entroserve"
GENERATED_PACKAGE = "_proto"


def find_program(explicit, env_name, name):
    """The program to run: the flag, the environment variable, or PATH."""
    for candidate in (explicit, os.environ.get(env_name), name):
        if candidate:
            # protoc runs a plugin by path only: resolve bare names on PATH.
            found = candidate if os.sep in candidate else shutil.which(candidate)
            if found:
                return os.path.abspath(found)
    raise SystemExit(f"generate_stubs.py: cannot find {name} (set {env_name} or pass its path)")


def proto_files(proto_dir):
    """Every .proto under proto_dir, relative to it, sorted."""
    found = []
    for root, _, files in os.walk(proto_dir):
        for name in files:
            if name.endswith(".proto"):
                found.append(os.path.relpath(os.path.join(root, name), proto_dir))
    return sorted(found)


def rewrite_imports(text, top_packages):
    """Moves `from sampler.v1 import x` (for each of our top-level proto
    packages) under entroserve._proto."""
    pattern = re.compile(r"^(\s*)from (%s)((?:\.\w+)*) import " %
                         "|".join(re.escape(p) for p in top_packages), re.MULTILINE)
    return pattern.sub(
        lambda m: f"{m.group(1)}from {PACKAGE}.{GENERATED_PACKAGE}.{m.group(2)}{m.group(3)} import ",
        text)


def generate(out_dir, proto_dir, protoc, plugin):
    """Runs protoc into a scratch folder, rewrites the imports and installs the
    modules under out_dir/entroserve/_proto. Returns the files written."""
    protos = proto_files(proto_dir)
    if not protos:
        raise SystemExit(f"generate_stubs.py: no .proto files under {proto_dir}")
    top_packages = sorted({p.split(os.sep)[0] for p in protos})
    target = os.path.join(out_dir, PACKAGE, GENERATED_PACKAGE)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        cmd = [protoc, f"--proto_path={proto_dir}", f"--python_out={scratch}",
               f"--grpc_python_out={scratch}", f"--plugin=protoc-gen-grpc_python={plugin}"]
        cmd += [os.path.join(proto_dir, p) for p in protos]
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise SystemExit(f"generate_stubs.py: protoc failed: {result.stdout.strip()}\n"
                             f"(command: {' '.join(cmd)})")
        if os.path.isdir(target):
            shutil.rmtree(target)
        for root, _, files in os.walk(scratch):
            rel = os.path.relpath(root, scratch)
            dest = os.path.normpath(os.path.join(target, rel))
            os.makedirs(dest, exist_ok=True)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    text = rewrite_imports(f.read(), top_packages)
                path = os.path.join(dest, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                written.append(path)
    # Regular packages (not namespace packages) all the way down.
    for root, _, _ in os.walk(target):
        init = os.path.join(root, "__init__.py")
        if not os.path.exists(init):
            with open(init, "w", encoding="utf-8") as f:
                f.write('"""Generated from proto/ by generate_stubs.py; do not edit."""\n')
            written.append(init)
    return written


def copy_package(package_src, out_dir):
    """Copies the package's own modules (not a generated _proto) into out_dir."""
    dest = os.path.join(out_dir, PACKAGE)
    for root, dirs, files in os.walk(package_src):
        dirs[:] = [d for d in dirs if d not in (GENERATED_PACKAGE, "__pycache__")]
        rel = os.path.relpath(root, package_src)
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
        for name in files:
            if name.endswith(".py") or name == "py.typed":
                shutil.copy2(os.path.join(root, name), os.path.join(dest, rel, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder that receives entroserve/_proto")
    parser.add_argument("--proto_dir", default=os.path.join(HERE, "..", "..", "proto"))
    parser.add_argument("--protoc", default="", help="protoc (default: $PROTOC, else PATH)")
    parser.add_argument("--grpc_python_plugin", default="",
                        help="gRPC's Python protoc plugin (default: $GRPC_PYTHON_PLUGIN, else PATH)")
    parser.add_argument("--package_src", default="",
                        help="also copy the package's modules from here (src/entroserve)")
    args = parser.parse_args(argv)
    protoc = find_program(args.protoc, "PROTOC", "protoc")
    plugin = find_program(args.grpc_python_plugin, "GRPC_PYTHON_PLUGIN", "grpc_python_plugin")
    if args.package_src:
        copy_package(args.package_src, args.out)
    generate(args.out, os.path.abspath(args.proto_dir), protoc, plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
