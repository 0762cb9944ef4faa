"""A real Orthanc on loopback for the PACS tests: free ports, a temporary folder, a configuration written here
(DICOMweb plugin, a DIMSE port with its AE title checked, HTTP basic authentication), started, waited for and
stopped. Not collected by pytest (no ``test_`` prefix); the fixtures are in ``conftest.py``."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

ORTHANC_CANDIDATES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
DICOMWEB_PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                              "/usr/lib/orthanc/libOrthancDicomWeb.so")
AET = "VRTESTPACS"
USER, PASSWORD = "reviewer", "s3cret-for-tests"
#: The test patient's identifiers, written into copies of the shared series (which carries none).
PATIENT_ID, PATIENT_NAME, ACCESSION = "VR-TEST-0001", "Test^Vertebra", "ACC-2112"


def orthanc_binary() -> str | None:
    found = shutil.which("Orthanc")
    return found or next((c for c in ORTHANC_CANDIDATES if Path(c).is_file()), None)


def dicomweb_plugin() -> str | None:
    return next((c for c in DICOMWEB_PLUGIN_CANDIDATES if Path(c).is_file()), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LoadedStudy:
    study_uid: str
    series_uid: str
    sop_uids: list[str]
    frame_of_reference_uid: str
    patient_id: str
    accession: str
    modality: str = "CT"


@dataclass
class OrthancServer:
    folder: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen | None = None
    studies: dict[str, LoadedStudy] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base}/dicom-web"

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.base + path, data=body, method=method)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def get_json(self, path: str) -> object:
        return json.loads(self._request("GET", path))

    def upload(self, data: bytes) -> dict:
        return json.loads(self._request("POST", "/instances", data))

    def start(self, binary: str, plugin: str, timeout_s: float = 60.0) -> None:
        storage = self.folder / "db"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "vertebra-review-tests", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": AET,
            "DicomCheckCalledAet": True, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD}, "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True, "DicomModalities": {},
            "HttpTimeout": 30, "DicomScpTimeout": 30, "StableAge": 1, "SaveJobs": False,
            "OverwriteInstances": True,
        }
        config_path = self.folder / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        log = (self.folder / "orthanc.log").open("wb")
        self.process = subprocess.Popen([binary, str(config_path)], cwd=self.folder, stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: "
                                   f"{(self.folder / 'orthanc.log').read_text(errors='replace')[-2000:]}")
            try:
                self.get_json("/system")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer on port {self.http_port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.process = None

    def load_series(self, files: list[Path], key: str, *, modality: str = "CT",
                    patient_id: str = PATIENT_ID, accession: str = ACCESSION) -> LoadedStudy:
        """Copies of ``files`` with a study, series and patient (the shared series has empty UIDs), uploaded."""
        study_uid = generate_uid(entropy_srcs=[f"vertebra-review-tests:{key}:study"])
        series_uid = generate_uid(entropy_srcs=[f"vertebra-review-tests:{key}:series"])
        frame_uid = generate_uid(entropy_srcs=[f"vertebra-review-tests:{key}:frame"])
        sops = []
        for number, path in enumerate(files, start=1):
            dataset = pydicom.dcmread(path)
            sop = dataset.file_meta.get("MediaStorageSOPInstanceUID") or ""
            if not sop or key != "ct":
                sop = generate_uid(entropy_srcs=[f"vertebra-review-tests:{key}:{number}"])
            dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = sop
            dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
            dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, series_uid
            dataset.FrameOfReferenceUID = frame_uid
            dataset.PatientID, dataset.PatientName, dataset.AccessionNumber = patient_id, PATIENT_NAME, accession
            dataset.Modality = modality
            dataset.StudyID, dataset.SeriesNumber, dataset.InstanceNumber = "1", 2, number
            out = self.folder / "upload" / key / f"{number:04d}.dcm"
            out.parent.mkdir(parents=True, exist_ok=True)
            dataset.save_as(out, enforce_file_format=True)
            self.upload(out.read_bytes())
            sops.append(sop)
        loaded = LoadedStudy(study_uid, series_uid, sops, frame_uid, patient_id, accession, modality)
        self.studies[key] = loaded
        return loaded
