"""Import an ONNX model as a plugin without writing YAML: guess, rank normalisations, write the folder.

    proposal = propose("model.onnx", sample="cat.png")      # decisions, ranking, manifest
    for d in proposal.decisions: print(d.line())
    write_plugin_folder(proposal, "plugins/my-model")       # validated, smoke-run, atomic

Used by ``workbench models import`` and the GUI's File > Import model dialog (one code path).
"""
from __future__ import annotations

from .graph import Graph, ImportRefused, open_graph
from .guess import Decision
from .normalise import Candidate, Ranking
from .propose import Proposal, propose, read_labels_file, slug
from .write import manifest_text, write_plugin_folder

__all__ = ["Candidate", "Decision", "Graph", "ImportRefused", "Proposal", "Ranking", "manifest_text",
           "open_graph", "propose", "read_labels_file", "slug", "write_plugin_folder"]
