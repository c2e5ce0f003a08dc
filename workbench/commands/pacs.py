"""``workbench pacs echo|find|get|send|nodes``: DICOM networking with configured (or named) nodes.

NODE is a configured node's name, ``AET@HOST:PORT`` (a DIMSE peer; our AE title from the settings) or an
``http(s)://`` DICOMweb base URL. These are the only commands that open network connections, and only to
NODE (plus, for ``get --move``, a listening port NODE connects back to). See docs/PACS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "pacs"
HELP = "DICOM networking: echo, find, get (C-GET / C-MOVE / WADO-RS), send (C-STORE / STOW-RS), nodes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True,
                                parser_class=type(parser))
    node_help = "a configured node's name, AET@HOST:PORT or a DICOMweb URL"

    p = sub.add_parser("echo", help="test the connection (C-ECHO; a one-result QIDO-RS search for DICOMweb)")
    p.add_argument("node", metavar="NODE", help=node_help)

    p = sub.add_parser("find", help="search patients, studies or series")
    p.add_argument("node", metavar="NODE", help=node_help)
    p.add_argument("--level", choices=("patient", "study", "series"), default="study")
    p.add_argument("--patient-id", metavar="ID")
    p.add_argument("--patient-name", metavar="PATTERN", help="wildcards * and ? (e.g. 'Doe*')")
    p.add_argument("--birth-date", metavar="YYYYMMDD")
    p.add_argument("--accession", metavar="A")
    p.add_argument("--modality", metavar="M", help="e.g. CT (study level: modalities in study)")
    p.add_argument("--study-date", metavar="FROM-TO", help="YYYYMMDD, FROM-TO, FROM- or -TO")
    p.add_argument("--description", metavar="TEXT", help="study (or series) description, wildcards allowed")
    p.add_argument("--study", metavar="UID", help="StudyInstanceUID")
    p.add_argument("--json", action="store_true", help="print a JSON list of matches (DICOM keywords)")

    p = sub.add_parser("get", help="retrieve a study or series, one folder per series (resumable)")
    p.add_argument("node", metavar="NODE", help=node_help)
    p.add_argument("--study", metavar="UID", required=True, help="StudyInstanceUID")
    p.add_argument("--series", metavar="UID", action="append", help="only this SeriesInstanceUID (repeatable)")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="folder (created); DIR/<SeriesUID>/")
    p.add_argument("--move", action="store_true",
                   help="C-MOVE to our storage SCP (the PACS must know our AE title and port) instead of C-GET")

    p = sub.add_parser("send", help="send DICOM files (SEG, encapsulated PDF, any DICOM) to NODE")
    p.add_argument("node", metavar="NODE", help=node_help)
    p.add_argument("paths", metavar="FILE_OR_FOLDER", nargs="+")

    p = sub.add_parser("nodes", help="list, add or remove configured nodes")
    nodes = p.add_subparsers(dest="nodes_command", metavar="ACTION", parser_class=type(parser))
    q = nodes.add_parser("list", help="list the nodes (default)")
    q.add_argument("--json", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    q = nodes.add_parser("add", help="add a node to the user's settings")
    q.add_argument("name", metavar="NAME")
    q.add_argument("address", metavar="AET@HOST:PORT|URL")
    q.add_argument("--our-aet", metavar="AET", help="our AE title towards this node (default: the setting)")
    q.add_argument("--auth", choices=("none", "basic", "bearer"), default="none", help="DICOMweb auth")
    q.add_argument("--user", metavar="NAME", help="DICOMweb basic-auth user name")
    q.add_argument("--secret-env", metavar="VAR",
                   help="environment variable holding the password/token (else the OS keyring)")
    q.add_argument("--timeout", type=float, default=30.0, metavar="S")
    q.add_argument("--retries", type=int, default=2, metavar="N")
    q.add_argument("--replace", action="store_true", help="overwrite a node of that name")
    q = nodes.add_parser("remove", help="remove a node from the user's settings")
    q.add_argument("name", metavar="NAME")


def _client(spec: str):
    from ..pacs.client import connect
    from ..pacs.nodes import load_config, resolve_node

    config = load_config()
    return connect(resolve_node(spec, config), config)


def _echo(args: argparse.Namespace) -> int:
    client = _client(args.node)
    ms = client.echo()
    print(f"{client.node.label}: OK ({ms:.0f} ms)")
    return 0


_COLUMNS = {
    "patient": ("PatientID", "PatientName", "PatientBirthDate", "NumberOfPatientRelatedStudies"),
    "study": ("PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
              "StudyDescription", "NumberOfStudyRelatedInstances", "StudyInstanceUID"),
    "series": ("PatientID", "Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances",
               "SeriesInstanceUID"),
}


def _find(args: argparse.Namespace) -> int:
    from ..pacs.client import find
    from ..pacs.query import Query

    query = Query(level=args.level, patient_id=args.patient_id, patient_name=args.patient_name,
                  birth_date=args.birth_date, accession=args.accession, modality=args.modality,
                  study_date=args.study_date, description=args.description, study_uid=args.study)
    client = _client(args.node)
    matches = find(client, query)
    if args.json:
        json.dump(matches, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    cols = _COLUMNS[args.level]
    rows = [[str(m.get(c, "")) for c in cols] for m in matches]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print(f"{len(matches)} match(es) on {client.node.label}", file=sys.stderr)
    return 0


def _get(args: argparse.Namespace) -> int:
    from ..pacs.client import retrieve_study

    client = _client(args.node)
    progress = sys.stderr.isatty()
    step = retrieve_study(client, args.study, Path(args.output), series_uids=args.series, move=args.move)
    try:
        while True:
            p = next(step)
            if progress:
                total = p.total if p.total is not None else "?"
                print(f"\r{p.done}/{total} instances", end="", file=sys.stderr, flush=True)
    except StopIteration as stop:
        folders = stop.value
    if progress:
        print(file=sys.stderr)
    for folder in folders:
        n = sum(1 for f in folder.glob("*.dcm") if not f.name.startswith("."))
        print(f"{folder}: {n} instance(s)")
    return 0


def _send(args: argparse.Namespace) -> int:
    from ..pacs.client import collect_files, refused_message, send
    from ..pacs.errors import PacsError

    files = collect_files(args.paths)
    client = _client(args.node)
    step = send(client, files)
    try:
        while True:
            next(step)
    except StopIteration as stop:
        refused = stop.value
    if refused:
        raise PacsError(refused_message(client.node, refused, len(files)))
    print(f"sent {len(files)} file(s) to {client.node.label}")
    return 0


def _nodes(args: argparse.Namespace) -> int:
    from ..pacs.errors import PacsError
    from ..pacs.nodes import Node, load_nodes, parse_spec, remove_user_node, save_user_node

    action = args.nodes_command or "list"
    if action == "add":
        base = parse_spec(args.address)
        if base is None:
            raise PacsError(f"nodes add: {args.address!r} is neither AET@HOST:PORT nor an http(s) URL")
        fields = base.model_dump(exclude={"name", "source"}, exclude_none=True)
        fields.update(name=args.name, timeout=args.timeout, retries=args.retries)
        if base.kind == "dimse":
            fields["our_ae_title"] = args.our_aet
        else:
            fields.update(auth=args.auth, username=args.user, secret_env=args.secret_env)
        try:
            node = Node.model_validate(fields)
        except ValueError as exc:
            raise PacsError(f"nodes add {args.name}: {' '.join(str(exc).splitlines()[-1:])}") from exc
        save_user_node(node, replace=args.replace)
        print(f"added {node.label}")
        return 0
    if action == "remove":
        remove_user_node(args.name)
        print(f"removed {args.name}")
        return 0
    nodes = load_nodes()
    if getattr(args, "json", False):
        json.dump([n.to_config() | {"source": n.source} for n in nodes], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for n in nodes:
        print(f"{n.name:<16} {n.kind:<8} {n.address}  [{n.source}]")
    if not nodes:
        print("no PACS nodes configured (workbench pacs nodes add NAME AET@HOST:PORT)", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    return {"echo": _echo, "find": _find, "get": _get, "send": _send, "nodes": _nodes}[args.pacs_command](args)
