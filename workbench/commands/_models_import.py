"""``workbench models import MODEL.onnx -o PLUGIN_DIR``: guess a plugin.yaml from the graph and write the folder.

No question is asked: one line per decision (``WEAK`` marks guesses to check), the normalisation ranking
when a sample is given, then the folder. Refusals are one line and exit status 2, with nothing written.
"""
from __future__ import annotations

import argparse

TASK_CHOICES = ("classification", "segmentation", "detection", "restoration")


def add_import_parser(sub) -> None:
    p = sub.add_parser("import", help="write a plugin folder for an ONNX model, guessing layout, size, task, "
                                      "decoding, labels and (with --sample) the normalisation")
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model file")
    p.add_argument("-o", "--output", required=True, metavar="PLUGIN_DIR",
                   help="the plugin folder to create (must not exist, or be empty)")
    p.add_argument("--sample", metavar="IMAGE", help="an image the model is meant for: decides the "
                                                     "normalisation by running the candidates; copied as the "
                                                     "plugin's sample")
    p.add_argument("--task", choices=TASK_CHOICES, help="force the task instead of guessing it")
    p.add_argument("--labels", metavar="FILE", help="class labels, one per line")
    p.add_argument("--name", help="display name (the id is derived from it); default: the file name")


def run_import(args: argparse.Namespace) -> int:
    from ..core.settings import load_settings
    from ..core.site import site_policy
    from ..inference.importer import propose, write_plugin_folder

    settings = load_settings()
    site_policy().refuse_in_clinic_mode("importing a model")
    proposal = propose(args.model, sample=args.sample, task=args.task, labels=args.labels, name=args.name,
                       max_pixels=settings.max_pixels)
    for decision in proposal.decisions:
        print(decision.line())
    ranking = proposal.ranking
    if ranking is not None:
        print(f"normalisation ranking by {ranking.criterion}:")
        for cand in ranking.candidates:
            mark = "*" if cand is ranking.chosen else " "
            tie = " (tie)" if cand in ranking.ties and cand is not ranking.chosen else ""
            print(f"  {mark} {cand.line()}{tie}")
    folder = write_plugin_folder(proposal, args.output, settings=settings)
    weak = sorted({d.field for d in proposal.weak})
    print(f"wrote {folder}/plugin.yaml ({proposal.manifest['task']}, id {proposal.manifest['id']}); "
          + (f"{len(weak)} weak guess(es) to check: {', '.join(weak)}" if weak else "no weak guesses"))
    return 0
