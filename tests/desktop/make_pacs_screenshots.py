"""Make the pictures of File › Open from PACS… and File › Send results to PACS… (not a test; pytest does not
collect it), against a local Orthanc as the PACS tests start it (``tests/pacs/orthanc_server.py``):

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_pacs_screenshots.py OUT

OUT receives ``pacs-open.png`` (the search found two CT studies; the first is being retrieved),
``pacs-open-found.png``, ``pacs-send.png`` (after a send), ``pacs-send-no-key.png`` and ``pacs-no-servers.png``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ["VERTEBRA_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="vr-pacs-screenshots-")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pacs"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pydicom
from orthanc_server import AET, PASSWORD, USER, OrthancServer, dicomweb_plugin, free_port, orthanc_binary
from PySide6 import QtWidgets

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.pacs.credentials import password_variable
from core.pacs.servers import PacsServer, ServerList
from core.study.layout import Study
from desktop.app import create_app
from desktop.dialogs.pacs_parts import JobProgress
from desktop.main_window import MainWindow
from tests.desktop.screenshot_loop import settle, wait
from tests.pacs.conftest import real_series_files

SCRATCH = Path(os.environ["VERTEBRA_REVIEW_CONFIG_DIR"])  # the settings, and beside them a home and a server
REPO = Path(__file__).resolve().parents[2]


def described(files: list[Path], description: str) -> list[Path]:
    """Copies of ``files`` with a study description (the shared series has none)."""
    folder = Path(tempfile.mkdtemp(dir=SCRATCH))
    copies = []
    for path in files:
        dataset = pydicom.dcmread(path)
        dataset.StudyDescription = description
        copies.append(folder / path.name)
        dataset.save_as(copies[-1])
    return copies


def start_orthanc() -> OrthancServer:
    server = OrthancServer(SCRATCH / "orthanc", free_port(), free_port())
    server.start(orthanc_binary(), dicomweb_plugin())
    files = described(real_series_files(), "CT LUMBAR SPINE W/O CONTRAST")
    server.load_series(files, "ct")
    server.load_series(described(files[:12], "CT THORACOLUMBAR SPINE"), "ct-2", patient_id="VR-TEST-0003",
                       accession="ACC-2187")
    server.load_series(files[:3], "mr", modality="MR", patient_id="VR-TEST-0002", accession="ACC-MR")
    return server


def action(window, text: str):
    return next(a for a in window.actions() if a.text().replace("&", "") == text)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(SCRATCH / "home")  # the study folder offered is in this Documents
    (SCRATCH / "home" / "Documents").mkdir(parents=True)
    app = create_app([])
    window = MainWindow(reader="dr-lee")
    window.show()
    settle(app)
    action(window, "Open from PACS…").trigger()
    settle(app)
    window.pacs.open_dialog.grab().save(str(out / "pacs-no-servers.png"))
    window.pacs.open_dialog.close()
    orthanc = start_orthanc()
    try:
        os.environ[password_variable("hospital")] = PASSWORD
        servers = ServerList.load()
        servers.add(PacsServer("hospital", url=orthanc.dicomweb_url, user=USER))
        servers.add(PacsServer("scanner", host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET))
        servers.save()
        open_and_retrieve(app, window, out)
        send(app, window, out)
    finally:
        orthanc.stop()
        window.close()


def open_and_retrieve(app, window: MainWindow, out: Path) -> None:
    action(window, "Open from PACS…").trigger()
    settle(app)
    dialog = window.pacs.open_dialog
    dialog.search_button.click()
    wait(app, lambda: dialog.table.rowCount() > 0 and not dialog.busy)
    settle(app)
    dialog.grab().save(str(out / "pacs-open-found.png"))
    original = JobProgress.step
    grabbed: list[bool] = []

    def step(row, progress) -> None:
        original(row, progress)
        if progress.stage == "retrieve" and progress.step >= 8 and not grabbed:
            grabbed.append(True)
            dialog.grab().save(str(out / "pacs-open.png"))

    JobProgress.step = step
    dialog.retrieve_button.click()
    wait(app, lambda: window.opened is not None)
    JobProgress.step = original
    settle(app, 1.0)


def send(app, window: MainWindow, out: Path) -> None:
    study: Study = window.opened.session.study
    for slice_id, x in (("s005", 180.0), ("s006", 200.0)):
        image = study.read_image("case-0001", slice_id)
        top, bottom = 1.0, image.height - 2.0
        study.save_annotation(SliceAnnotation(image.width, image.height, (
            Vertebra(Box(x, top, x + 60.0, bottom), frozenset({Disease.OVCF}), level="T12"),
            Vertebra(Box(x + 70.0, top, x + 128.0, bottom), frozenset(), level="T11"),
        )), "case-0001", slice_id, reader="dr-lee")
    action(window, "Send results to PACS…").trigger()
    settle(app)
    dialog = window.pacs.send_dialog
    dialog.send_button.click()
    wait(app, lambda: dialog.result.isVisible() or dialog.problem.isVisible())
    settle(app)
    dialog.grab().save(str(out / "pacs-send.png"))
    dialog.close()
    other = Study.create(SCRATCH / "home" / "Documents" / "ward-study")
    other.root.joinpath("images", "case-0001").mkdir(parents=True)
    (other.root / "images" / "case-0001" / "s001.png").write_bytes(
        (REPO / "resources" / "screenshots" / "first-window.png").read_bytes())
    window.open_path(other.root)
    wait(app, lambda: window.opened is not None and window.opened.session.study.root == other.root)
    action(window, "Send results to PACS…").trigger()
    settle(app)
    window.pacs.send_dialog.grab().save(str(out / "pacs-send-no-key.png"))
    for widget in QtWidgets.QApplication.topLevelWidgets():
        widget.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
