"""``workbench models trust PLUGIN`` / ``workbench models untrust PLUGIN`` (a part of the ``models`` command).

Trust lets a plugin's own decoder code run; it is recorded in the settings file with the plugin's content
hash (:mod:`workbench.inference.trust`), so an edited plugin is untrusted again.
"""
from __future__ import annotations

import argparse

from ..core.errors import WorkbenchError
from ..core.settings import load_settings, settings_path


def add_trust_parsers(sub) -> None:
    """Add the ``trust`` and ``untrust`` sub-commands to the ``models`` sub-parsers."""
    p_trust = sub.add_parser("trust", help="allow a plugin's own decoder code (output.decoder) to run; recorded "
                                           "with the hash of its .py files, plugin.yaml and model")
    p_trust.add_argument("plugin", metavar="PLUGIN", help="plugin folder, its plugin.yaml, or an installed id")
    p_untrust = sub.add_parser("untrust", help="withdraw the trust of a plugin's code")
    p_untrust.add_argument("plugin", metavar="PLUGIN", help="plugin folder, its plugin.yaml, or an installed id")


def run_trust(args: argparse.Namespace) -> int:
    from ..core.site import site_policy
    from ..inference.checksum import verify_sha256
    from ..inference.registry import find_plugin
    from ..inference.trust import trust_plugin, untrust_plugin

    settings = load_settings()
    site_policy().refuse_in_clinic_mode("trusting plugin code" if args.action == "trust" else "changing plugin trust")
    spec = find_plugin(args.plugin, settings)
    if args.action == "untrust":
        removed = untrust_plugin(spec, settings)
        print(f"{spec.id}: {'trust withdrawn' if removed else 'was not trusted'} ({spec.folder}); "
              f"settings: {settings_path()}")
        return 0
    if spec.output.decoder is None:
        raise WorkbenchError(f"{spec.id} has no output.decoder: it runs no code of its own, nothing to trust",
                             path=spec.manifest_path)
    verify_sha256(spec)  # never record trust for a corrupted or swapped model
    record, added = trust_plugin(spec, settings)
    code = [f for f in record.files if f.endswith(".py")]
    print(f"{spec.id}: {'trusted' if added else 'already trusted'} ({spec.folder}); content sha256 "
          f"{record.sha256} over {len(record.files)} files ({', '.join(record.files)})")
    print(f"warning: {', '.join(code) or 'its code'} will run with your rights whenever this plugin is used; "
          f"any change to these files withdraws the trust. Recorded in {settings_path()}")
    return 0
