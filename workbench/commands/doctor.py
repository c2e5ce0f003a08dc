"""``workbench doctor``: which onnxruntime is installed, its providers, CUDA libraries, smoke runs."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

NAME = "doctor"
HELP = "check the ONNX Runtime installation: packages, providers, CUDA/cuDNN libraries, a smoke run per provider"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from ..core.settings import load_settings
    from ..inference.selftest import diagnose

    report = diagnose()
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return 1 if report.problems else 0
    pkgs = ", ".join(f"{k} {v}" for k, v in report.packages.items()) or "none"
    print(f"onnxruntime packages : {pkgs}" + ("   <-- CONFLICT" if report.conflict else ""))
    if report.ort_version:
        print(f"onnxruntime module   : {report.ort_version} ({report.ort_path}), device {report.device}")
        print(f"providers available  : {', '.join(report.providers)}")
    settings = load_settings()
    print(f"settings             : provider {settings.provider}, intra-op threads {settings.intra_op_threads}")
    if report.preload:
        print(f"CUDA preload         : {report.preload}")
    libs = ", ".join(f"{k}={'found' if v else 'missing'}" for k, v in report.cuda_libraries.items())
    print(f"CUDA libraries       : {libs}")
    if report.nvidia_packages:
        print(f"NVIDIA wheels        : {', '.join(f'{k} {v}' for k, v in report.nvidia_packages.items())}")
    for run_ in report.smoke:
        status = "ok" if run_.ok else "FAILED"
        print(f"smoke run            : {run_.requested}: {status} (ran on {run_.used or '-'}, {run_.ms:.1f} ms)"
              + ("" if run_.ok else f" - {run_.message}"))
    if report.problems:
        print("problems:")
        for p in report.problems:
            print(f"  - {p}")
        return 1
    print("all good")
    return 0
