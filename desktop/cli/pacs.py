"""``pacs``: DICOM servers (``servers``, ``add``, ``remove``, ``test``), studies in (``find``, ``get``) and results
out (``send``, a DICOM SR per case). The work is in :mod:`core.pacs`; this module parses and prints."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict
from pathlib import Path

from core.pacs.references import default_key_file
from desktop.cli.output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, drive, say, say_json, warn


def _server(args: argparse.Namespace):  # -> PacsServer
    from core.pacs.servers import ServerList, with_timeout

    return with_timeout(ServerList.load().get(args.name), getattr(args, "timeout", None))


def cmd_servers(args: argparse.Namespace) -> int:
    from core.pacs.credentials import password_variable
    from core.pacs.servers import ServerList

    servers = ServerList.load()
    if args.json:
        say_json([server.to_json() for server in servers.servers])
        return EXIT_OK
    if not servers.servers:
        say(f"no servers yet ({servers.path}); add one with `vertebra-review pacs add NAME --url URL` or "
            f"`--host HOST --port PORT --ae AE`")
    for server in servers.servers:
        user = f", user {server.user} (password: keyring or {password_variable(server.name)})" if server.user else ""
        say(f"{server.name}: {server.kind} {server.address}{user}")
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from core.pacs.credentials import store_password
    from core.pacs.servers import DEFAULT_CALLING_AE, DEFAULT_TIMEOUT_S, PacsServer, ServerList, check_ca_bundle

    server = PacsServer(args.name, url=args.url, host=args.host, port=args.port, called_ae=args.ae,
                        calling_ae=args.calling_ae or DEFAULT_CALLING_AE, user=args.user,
                        ca_bundle=str(check_ca_bundle(args.ca_bundle, args.url)) if args.ca_bundle else None,
                        verify_tls=not args.insecure, timeout_s=args.timeout or DEFAULT_TIMEOUT_S)
    servers = ServerList.load()
    servers.add(server, replace_existing=args.replace)
    if args.password_prompt:
        store_password(server, getpass.getpass(f"password of {args.user} on {args.name}: "))
    path = servers.save()
    say(f"{server.name}: {server.kind} {server.address} saved in {path}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from core.pacs.credentials import forget_password
    from core.pacs.servers import ServerList

    servers = ServerList.load()
    server = servers.remove(args.name)
    servers.save()
    forget_password(server)
    say(f"{server.name} removed")
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from core.pacs.connection import connect

    server = _server(args)
    client = connect(server)
    try:
        say(f"{server.name}: ok ({client.echo()})")
    finally:
        client.close()
    return EXIT_OK


def cmd_find(args: argparse.Namespace) -> int:
    from core.pacs.connection import connect
    from core.pacs.query import StudyQuery, parse_date_range

    query = StudyQuery(patient_id=args.patient, accession=args.accession,
                       date=parse_date_range(args.date) if args.date else None, modality=args.modality,
                       study_uid=args.study_uid, limit=args.limit)
    client = connect(_server(args))
    try:
        studies = client.find_studies(query)
        series = {s.study_uid: client.find_series(s.study_uid) for s in studies} if args.series else {}
    finally:
        client.close()
    if args.json:
        say_json([{**asdict(s), "series_list": [asdict(x) for x in series.get(s.study_uid, [])]} for s in studies])
        return EXIT_OK
    for study in studies:
        say(f"{study.study_uid}  patient {study.patient_id or '?'}  date {study.study_date or '?'}  accession "
            f"{study.accession or '-'}  {'/'.join(study.modalities) or '?'}  {study.series or '?'} series, "
            f"{study.instances or '?'} instances  {study.description}")
        for item in series.get(study.study_uid, []):
            say(f"    series {item.series_uid}  {item.modality}  #{item.number or '?'}  {item.instances or '?'} "
                f"instances  {item.description}")
    say(f"{len(studies)} studies")
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    from core.pacs.retrieve import retrieve_study
    from core.study.importer import ImportOptions

    key_file = args.key_file or default_key_file(args.study)
    options = ImportOptions(window=args.window, sagittal=args.sagittal, count=args.count, step_mm=args.step_mm,
                            thickness_mm=args.thickness_mm)
    report = drive(retrieve_study(_server(args), args.study_uid, args.study, key_file, series=args.series,
                                  options=options, keep_download=args.keep_download))
    for uid, why in report.left_out:
        warn(f"left out series {uid}: {why}")
    imported = report.imported
    say(f"retrieved {report.downloaded} instances" + (f" ({report.resumed} already here from an earlier run)"
                                                      if report.resumed else ""))
    if imported is None:
        return EXIT_ERROR
    for case in imported.cases:
        say(f"{case.case}: {case.slices} slices")
    for _source, existing in imported.duplicates:
        warn(f"already in the study as {existing}")
    for source, why in imported.skipped:
        warn(f"skipped {source}: {why}")
    if report.dicom_key is not None:
        say(f"key file {key_file} and DICOM key {report.dicom_key} (keep both outside the study)")
    if not imported.cases and not imported.duplicates:
        return EXIT_ERROR
    return EXIT_PARTIAL if imported.skipped else EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    from core.pacs.send import send_results
    from core.review.export import ExportSource

    if args.reader:
        source = ExportSource.reader(args.reader)
    elif args.model:
        source = ExportSource.model(args.model)
    else:
        source = ExportSource.consensus()
    key_file = args.key_file or default_key_file(args.study)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    report = drive(send_results(_server(args), args.study, source, key_file, cases=args.case, save_to=args.save))
    for entry in report.sent:
        if entry.unchanged:
            say(f"{entry.case}: unchanged, already on {args.name} as {entry.sop_uid} (not sent again)")
        else:
            earlier = f", beside {entry.earlier} earlier report(s) in its series" if entry.earlier else ""
            say(f"{entry.case}: sent {entry.vertebrae} vertebrae as SR {entry.sop_uid}{earlier}")
    for case, why in report.skipped:
        warn(f"skipped {case}: {why}")
    if not report.sent:
        warn(f"vertebra-review: error: nothing was sent ({len(report.skipped)} cases skipped)")
        return EXIT_ERROR
    return EXIT_PARTIAL if report.skipped else EXIT_OK


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, help="seconds each network step may take (default: the server's)")


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``pacs`` and its subcommands."""
    pacs = commands.add_parser("pacs", help="DICOM servers: find and get studies, send results back as DICOM SR")
    sub = pacs.add_subparsers(dest="pacs_command", metavar="SUBCOMMAND")
    _register_servers(sub)
    _register_add(sub)
    _register_remove(sub)
    _register_test(sub)
    _register_find(sub)
    _register_get(sub)
    _register_send(sub)


def _register_servers(sub: argparse._SubParsersAction) -> None:
    servers = sub.add_parser("servers", help="list your DICOM servers")
    servers.add_argument("--json", action="store_true")
    servers.set_defaults(func=cmd_servers)


def _register_add(sub: argparse._SubParsersAction) -> None:
    add = sub.add_parser("add", help="add a DICOMweb or DIMSE server to your list (no password is stored there)")
    add.add_argument("name")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="DICOMweb base URL (QIDO-RS/WADO-RS/STOW-RS), http:// or https://")
    where.add_argument("--host", help="DIMSE host")
    add.add_argument("--port", type=int, help="DIMSE port")
    add.add_argument("--ae", help="the server's AE title (DIMSE)")
    add.add_argument("--calling-ae", help="our AE title (default VERTEBRAREVIEW)")
    add.add_argument("--user", help="user for HTTP authentication (DICOMweb)")
    add.add_argument("--password-prompt", action="store_true",
                     help="ask for the password and keep it in the system keyring")
    add.add_argument("--ca-bundle", type=Path, help="CA file for an https server the system does not trust")
    add.add_argument("--insecure", action="store_true", help="do not check the https certificate (test servers)")
    add.add_argument("--replace", action="store_true", help="replace a server of the same name")
    _add_timeout(add)
    add.set_defaults(func=cmd_add)


def _register_remove(sub: argparse._SubParsersAction) -> None:
    remove = sub.add_parser("remove", help="remove a server (and its keyring password)")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_remove)


def _register_test(sub: argparse._SubParsersAction) -> None:
    test = sub.add_parser("test", help="check a connection (C-ECHO, or a QIDO-RS query) and say what failed")
    test.add_argument("name")
    _add_timeout(test)
    test.set_defaults(func=cmd_test)


def _register_find(sub: argparse._SubParsersAction) -> None:
    find = sub.add_parser("find", help="list the studies (and with --series their series) that match")
    find.add_argument("name")
    find.add_argument("--patient", help="patient ID")
    find.add_argument("--accession", help="accession number")
    find.add_argument("--date", help="study date or range: 20220101, 20220101-20221231, 20220101-, -20221231")
    find.add_argument("--modality", help="a modality in the study, such as CT")
    find.add_argument("--study-uid", help="one study instance UID")
    find.add_argument("--series", action="store_true", help="list each study's series too")
    find.add_argument("--limit", type=int, default=100, help="at most this many studies (default 100)")
    find.add_argument("--json", action="store_true")
    _add_timeout(find)
    find.set_defaults(func=cmd_find)


def _register_get(sub: argparse._SubParsersAction) -> None:
    get = sub.add_parser("get", help="retrieve a study's CT series into a study (anonymised; resumes)")
    get.add_argument("name")
    get.add_argument("study_uid", metavar="STUDY-UID")
    get.add_argument("study", type=Path, help="the study folder (created if missing)")
    get.add_argument("--series", action="append", metavar="UID", help="only this series (repeatable)")
    get.add_argument("--key-file", type=Path,
                     help="the key file mapping cases to their sources (default: STUDY.key.csv beside the study); "
                          "the DICOM key with the original UIDs goes beside it as .dicom.json")
    get.add_argument("--sagittal", action="store_true", help="reformat axial or coronal series to sagittal slices")
    get.add_argument("--count", type=int, default=11, help="sagittal slices per volume (default 11)")
    get.add_argument("--step-mm", type=float, default=3.0, help="distance between sagittal slices (default 3 mm)")
    get.add_argument("--thickness-mm", type=float, default=3.0, help="sagittal slab thickness (default 3 mm)")
    get.add_argument("--window", help="window of the PNG beside each DICOM slice (as for import)")
    get.add_argument("--keep-download", action="store_true", help="keep the downloaded originals after the import")
    _add_timeout(get)
    get.set_defaults(func=cmd_get)


def _register_send(sub: argparse._SubParsersAction) -> None:
    send = sub.add_parser("send", help="send each case's results to the server as a DICOM SR (TID 1500)")
    send.add_argument("name")
    send.add_argument("study", type=Path)
    source = send.add_mutually_exclusive_group()
    source.add_argument("--reader", help="this reader's annotations")
    source.add_argument("--consensus", action="store_true", help="the consensus (the default)")
    source.add_argument("--model", help="this model's predictions")
    send.add_argument("--key-file", type=Path, help="the key file of `pacs get` (default: STUDY.key.csv)")
    send.add_argument("--case", action="append", help="only this case (repeatable)")
    send.add_argument("--save", type=Path, metavar="DIR", help="also write each SR to this folder")
    _add_timeout(send)
    send.set_defaults(func=cmd_send)
