"""`ictview bench pacs`: pull a synthetic study from a local Orthanc over each protocol.

Reference in the same run: `ictview import` of the same DICOM files from disk (the pull
ends with that very import, so the difference is the network transfer). Figures are
slices imported per second (the chosen series, what a radiologist reads) and instances
fetched per second (every CT series of the study, thin ones included).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

PROTOCOLS = ("dicomweb", "dimse-get", "dimse-move")


def add_bench_parser(bsub) -> None:
    b = bsub.add_parser("pacs", help="pull a synthetic study from a local Orthanc: DICOMweb, "
                        "C-GET, C-MOVE vs a file import")
    b.add_argument("--preset", default="tiny", choices=("tiny", "demo", "paper-mini"))
    b.add_argument("--synth", type=Path, default=None, metavar="DIR",
                   help="an existing `ictview synth` output to use instead of generating one")


def _sites(folder: Path):
    from ictview.io.synthetic_import import read_manifest

    manifest = read_manifest(folder)
    return [(site, e["role"], folder / e["dicom"]) for site, e in manifest["sites"].items()]


def bench_pacs(args) -> int:
    from ictview.io.importers import ImportOptions, import_source
    from ictview.pacs import local_orthanc
    from ictview.pacs.connect import connect
    from ictview.pacs.pull import pull_studies
    from ictview.pacs.target import parse_target
    from ictview.store.workspace import Workspace
    from ictview.synth import generate

    with tempfile.TemporaryDirectory(prefix="ictview-bench-pacs-") as tmp:
        tmp = Path(tmp)
        synth = args.synth
        if synth is None:
            synth = tmp / "synth"
            generate(args.preset, synth, seed=0)
        sites = _sites(synth)
        server = local_orthanc.LocalOrthanc.start(tmp / "orthanc")
        try:
            t0 = time.monotonic()
            n_files = server.upload([d for _s, _r, d in sites])
            print(f"Orthanc {server.version}: uploaded {n_files} instances in "
                  f"{time.monotonic() - t0:.1f} s (REST)")
            t0 = time.monotonic()
            slices = 0
            studies: dict[str, list[str]] = {}
            with Workspace.create(tmp / "ws-files") as ws:
                for site, role, folder in sites:
                    import_source(ws, [folder], ImportOptions(site=site, role=role))
                for e in ws.exams():
                    studies.setdefault(e.site, []).append(e.study_uid)
                    slices += e.n_slices
            ref = time.monotonic() - t0
            n_studies = sum(len(v) for v in studies.values())
            print(f"{'how':<28}{'studies':>8}{'slices':>8}{'instances':>10}{'seconds':>9}"
                  f"{'slices/s':>10}{'inst/s':>9}")
            print(f"{'file import (reference)':<28}{n_studies:>8}{slices:>8}{n_files:>10}"
                  f"{ref:>9.1f}{slices / ref:>10.1f}{n_files / ref:>9.1f}")
            for protocol in PROTOCOLS:
                if protocol == "dicomweb":
                    target = parse_target(server.dicomweb_url, user=local_orthanc.USER,
                                          password=local_orthanc.PASSWORD, timeout_s=120)
                else:
                    move = protocol == "dimse-move"
                    target = parse_target(
                        server.dimse_url, calling_aet=local_orthanc.CLIENT_AET,
                        move_aet=local_orthanc.CLIENT_AET if move else "",
                        listen_port=server.scp_port if move else 0, timeout_s=120)
                client = connect(target)
                t0 = time.monotonic()
                fetched = got = 0
                failed = []
                with Workspace.create(tmp / f"ws-{protocol}") as ws:
                    for site, role, _folder in sites:
                        report = pull_studies(ws, client, studies.get(site, []), site, role)
                        fetched += report.fetched
                        got += sum(s.slices for s in report.studies if s.status == "imported")
                        failed += [s.reason for s in report.failed]
                dt = time.monotonic() - t0
                client.close()
                print(f"{'pull ' + protocol:<28}{n_studies:>8}{got:>8}{fetched:>10}{dt:>9.1f}"
                      f"{got / dt:>10.1f}{fetched / dt:>9.1f}")
                for reason in failed[:3]:
                    print(f"  failed: {reason}")
        finally:
            server.stop()
    print("(one machine, server and client sharing its cores: a noisy, loopback-only figure)")
    return 0
