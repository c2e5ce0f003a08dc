"""``workbench doctor``: which onnxruntime is installed, its providers, CUDA libraries, smoke runs."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

NAME = "doctor"
HELP = "check the ONNX Runtime installation: packages, providers, CUDA/cuDNN libraries, a smoke run per provider"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--provider", choices=("cuda", "tensorrt"), default="cuda",
                        help="GPU provider to check (default cuda; TensorRT is only tried when asked)")


def site_summary() -> str:
    """One line: the site file in effect and what it sets, or where one would be read from."""
    from ..core.site import SitePolicy, site_file, site_policy

    site = site_policy()
    if site.path is None:
        where = site_file()
        return f"none ({where} not found)" if where is not None else "none (WORKBENCH_SITE_FILE is empty)"
    set_keys = [f"{k} = {v!r}" for k, v in site.model_dump().items() if v != SitePolicy.model_fields[k].default]
    return f"{site.path}" + (f": {', '.join(set_keys)}" if set_keys else " (no keys set)")


def run(args: argparse.Namespace) -> int:
    from ..core.settings import load_settings
    from ..inference.selftest import diagnose
    from ..similar.ann import selftest as ann_selftest

    settings = load_settings()
    report = diagnose(want=args.provider, settings=settings)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return 1 if report.problems else 0
    pkgs = ", ".join(f"{k} {v}" for k, v in report.packages.items()) or "none"
    print(f"onnxruntime packages : {pkgs}" + ("   <-- CONFLICT" if report.conflict else ""))
    if report.ort_version:
        print(f"onnxruntime module   : {report.ort_version} ({report.ort_path}), device {report.device}")
        print(f"providers available  : {', '.join(report.providers)}")
    print(f"settings             : provider {settings.provider}, intra-op threads {settings.intra_op_threads}")
    print(f"site configuration   : {site_summary()}")  # issue 20: core/site.py, docs/INSTALL.md
    # a broken usearch only costs speed (exact scan), so say it here: the packaged build's smoke test reads it
    print(f"similar-case search  : {ann_selftest()}")
    if report.preload:
        print(f"CUDA preload         : {report.preload}")
    if report.libraries:
        print("CUDA/cuDNN libraries :")
    for lib in report.libraries:
        where = f"{lib['where']}: {lib['path']}" if lib["path"] else ("missing" if lib["required"] else
                                                                       "missing (optional)")
        print(f"  {lib['name']:<9} {lib['soname']:<20}: {where}")
    drv = report.driver
    if drv.get("library"):
        devices = drv.get("devices")
        problem = f" - {drv['error']}" if drv.get("error") else ""
        print(f"NVIDIA driver        : {drv['library']} loaded, CUDA {drv.get('version') or '?'}, "
              f"{devices if devices is not None else '?'} device(s){problem}")
    else:
        print(f"NVIDIA driver        : none ({drv.get('error') or 'not found'})")
    if drv.get("smi"):
        for line in drv["smi"]:
            print(f"nvidia-smi           : {line}")
    elif drv.get("smi_error"):
        print(f"nvidia-smi           : {drv['smi_error']}")
    else:
        print("nvidia-smi           : not installed")
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
    print(report.final)
    return 1 if report.problems else 0
