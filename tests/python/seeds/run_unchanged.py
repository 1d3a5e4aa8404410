"""Runs one of the seeds' Python clients, unchanged, against the server under test.

    run_unchanged.py TARGET DIALLED SCRIPT

The seed clients dial a fixed address (002's client.py: 'localhost:50051'). Tests bind port 0
so they never collide, so this launcher points grpc.insecure_channel at TARGET, and only for
the address the script is expected to dial (DIALLED): anything else fails loudly. The
script's file is executed as it is, as __main__, with the generated stubs on sys.path
(PYTHONPATH, from gen.sh).
"""
import runpy
import sys

import grpc

target, dialled, script = sys.argv[1:4]
_insecure_channel = grpc.insecure_channel


def _redirected(address, *args, **kwargs):
    if address != dialled:
        raise SystemExit(f"run_unchanged: {script} dialled {address!r}, expected {dialled!r}")
    return _insecure_channel(target, *args, **kwargs)


grpc.insecure_channel = _redirected
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
