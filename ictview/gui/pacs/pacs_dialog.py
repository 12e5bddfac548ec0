"""File > PACS: query a server, retrieve studies into the workspace, send labels back.

A thin view over ictview.pacs (the same code as `ictview pacs`): every network call runs
on a Worker thread with its own Workspace connection, so the window never freezes; a
retrieve reports progress per instance and can be cancelled (what arrived stays staged
and the next retrieve resumes). Failures are one line in the status line, in red. The
password is held only in its (masked) field, never saved.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ictview.gui.app import settings
from ictview.gui.workers import Worker
from ictview.pacs.target import DEFAULT_CALLING_AET, PASSWORD_ENV, USER_ENV, parse_target

Qt = QtCore.Qt
ROLES = ("labeled", "unlabeled", "validation", "test")
COLUMNS = ("Date", "Patient ID", "Accession", "Modalities", "Series", "Study UID")
ERROR_STYLE = "color:#e07a6a"


def _series_text(study) -> str:
    parts = []
    for s in study.series:
        name = s.description or s.modality
        if not name.upper().startswith(s.modality.upper()):
            name = f"{s.modality} {name}"
        thick = f", {s.thickness_mm:g} mm" if s.thickness_mm is not None else ""
        n = s.instances if s.instances is not None else "?"
        parts.append(f"{name} ({n} slices{thick})")
    return ";  ".join(parts)


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


class PacsDialog(QtWidgets.QDialog):
    imported = QtCore.Signal(list)  # exam names added to the workspace
    message_shown = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None, workspace: Path | None = None,
                 labelset: str = "", labelsets: list[str] | None = None,
                 sites: dict[str, str] | None = None):
        super().__init__(parent)
        self.setWindowTitle("PACS")
        self.workspace = Path(workspace) if workspace else None
        self.studies: list = []
        self.worker: Worker | None = None
        self.last_result = None
        s = settings()

        import os

        self.url = QtWidgets.QLineEdit(s.value("pacs/url", "", str))
        self.url.setPlaceholderText("http://host:8042/dicom-web   or   dimse://AET@host:4242")
        self.calling_aet = QtWidgets.QLineEdit(s.value("pacs/calling_aet", DEFAULT_CALLING_AET,
                                                       str))
        self.move_aet = QtWidgets.QLineEdit(s.value("pacs/move_aet", "", str))
        self.move_aet.setPlaceholderText("empty: C-GET")
        self.listen_port = QtWidgets.QSpinBox()
        self.listen_port.setRange(0, 65535)
        self.listen_port.setValue(int(s.value("pacs/listen_port", 0)))
        self.listen_port.setSpecialValueText("-")
        self.user = QtWidgets.QLineEdit(os.environ.get(USER_ENV, s.value("pacs/user", "", str)))
        self.password = QtWidgets.QLineEdit(os.environ.get(PASSWORD_ENV, ""))
        self.password.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)

        server = QtWidgets.QGroupBox("Server")
        f = QtWidgets.QGridLayout(server)
        f.addWidget(QtWidgets.QLabel("Address"), 0, 0)
        f.addWidget(self.url, 0, 1, 1, 5)
        f.addWidget(QtWidgets.QLabel("Calling AE"), 1, 0)
        f.addWidget(self.calling_aet, 1, 1)
        f.addWidget(QtWidgets.QLabel("C-MOVE to AE"), 1, 2)
        f.addWidget(self.move_aet, 1, 3)
        f.addWidget(QtWidgets.QLabel("listening on port"), 1, 4)
        f.addWidget(self.listen_port, 1, 5)
        f.addWidget(QtWidgets.QLabel("User"), 2, 0)
        f.addWidget(self.user, 2, 1)
        f.addWidget(QtWidgets.QLabel("Password"), 2, 2)
        f.addWidget(self.password, 2, 3)
        self.echo_button = QtWidgets.QPushButton("Test connection")
        self.echo_button.clicked.connect(self.echo)
        f.addWidget(self.echo_button, 2, 5)

        self.patient_id = QtWidgets.QLineEdit()
        self.patient_id.setPlaceholderText("any")
        self.study_date = QtWidgets.QLineEdit()
        self.study_date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.modality = QtWidgets.QLineEdit("CT")
        self.query_button = QtWidgets.QPushButton("Search")
        self.query_button.setDefault(True)
        self.query_button.clicked.connect(self.query)
        q = QtWidgets.QHBoxLayout()
        for label, w in (("Patient ID", self.patient_id), ("Study date", self.study_date),
                         ("Modality", self.modality)):
            q.addWidget(QtWidgets.QLabel(label))
            q.addWidget(w, 1 if w is not self.modality else 0)
        self.modality.setMaximumWidth(60)
        q.addWidget(self.query_button)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(4, QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(5, QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.site = QtWidgets.QComboBox()
        self.site.setEditable(True)
        self.site.addItems(sorted(sites or {}))
        self.site.setCurrentText(s.value("pacs/site", self.site.currentText() or "pacs", str))
        self.role = QtWidgets.QComboBox()
        self.role.addItems(ROLES)
        self.role.setCurrentText((sites or {}).get(self.site.currentText(),
                                                   s.value("pacs/role", "test", str)))
        self.site.currentTextChanged.connect(
            lambda t: (sites or {}).get(t) and self.role.setCurrentText(sites[t]))
        self.retrieve_button = QtWidgets.QPushButton("Retrieve selected")
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        r = QtWidgets.QHBoxLayout()
        r.addWidget(QtWidgets.QLabel("Into site"))
        r.addWidget(self.site, 1)
        r.addWidget(QtWidgets.QLabel("role"))
        r.addWidget(self.role)
        r.addWidget(self.retrieve_button)
        r.addWidget(self.cancel_button)

        self.labelset = QtWidgets.QComboBox()
        self.labelset.addItems(labelsets or ([labelset] if labelset else []))
        if labelset:
            self.labelset.setCurrentText(labelset)
        self.deidentify = QtWidgets.QCheckBox("De-identify (PS3.15 basic, modified dates)")
        self.send_button = QtWidgets.QPushButton("Send labels to PACS")
        self.send_button.clicked.connect(self.send)
        p = QtWidgets.QHBoxLayout()
        p.addWidget(QtWidgets.QLabel("Labelset"))
        p.addWidget(self.labelset, 1)
        p.addWidget(self.deidentify)
        p.addWidget(self.send_button)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setVisible(False)
        self.status = QtWidgets.QLabel("Enter the server address and search.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(server)
        lay.addLayout(q)
        lay.addWidget(self.table, 1)
        lay.addLayout(r)
        lay.addLayout(p)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(close)
        self.resize(1000, 620)
        self._update_buttons()

    # ---- state ---------------------------------------------------------------------------

    def busy(self) -> bool:
        return self.worker is not None and not self.worker.finished

    def _update_buttons(self) -> None:
        busy = self.busy()
        has_ws = self.workspace is not None
        for b in (self.echo_button, self.query_button):
            b.setEnabled(not busy)
        self.retrieve_button.setEnabled(not busy and has_ws and bool(self.selected_uids()))
        self.send_button.setEnabled(not busy and has_ws and self.labelset.count() > 0)
        self.cancel_button.setEnabled(busy)
        self.cancel_button.setVisible(busy)

    def show_message(self, text: str, error: bool = False) -> None:
        line = text.splitlines()[0] if text else ""
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(line)
        self.message_shown.emit(line)

    def selected_uids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.studies[r].study_uid for r in rows if r < len(self.studies)]

    def _target(self):
        return parse_target(self.url.text(), calling_aet=self.calling_aet.text().strip() or
                            DEFAULT_CALLING_AET, move_aet=self.move_aet.text().strip(),
                            listen_port=self.listen_port.value(), user=self.user.text(),
                            password=self.password.text())

    def _remember(self) -> None:
        s = settings()
        s.setValue("pacs/url", self.url.text())
        s.setValue("pacs/calling_aet", self.calling_aet.text())
        s.setValue("pacs/move_aet", self.move_aet.text())
        s.setValue("pacs/listen_port", self.listen_port.value())
        s.setValue("pacs/user", self.user.text())
        s.setValue("pacs/site", self.site.currentText())
        s.setValue("pacs/role", self.role.currentText())

    def _run(self, fn, done, busy_text: str) -> None:
        """Run fn(worker) off the UI thread; `done(result)` on the UI thread."""
        from ictview.errors import IctviewError

        if self.busy():
            return
        try:
            target = self._target()
        except IctviewError as e:
            self.show_message(str(e), error=True)
            return
        self._remember()
        worker = Worker(lambda: fn(target, worker), name="pacs")
        worker.done.connect(lambda result: self._finish(done, result))
        worker.failed.connect(lambda msg: self._finish(None, msg))
        worker.progressed.connect(self._on_progress)
        self.worker = worker
        self.show_message(busy_text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        worker.start()
        self._update_buttons()

    def _finish(self, done, result) -> None:
        self.worker.wait()
        self.progress.setVisible(False)
        self.last_result = result
        if done is None:
            self.show_message(str(result), error=True)
        else:
            done(result)
        self._update_buttons()

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def cancel(self) -> None:
        if self.busy():
            self.worker.cancel()
            self.show_message("Cancelling… (instances already received are kept)")

    def wait(self, timeout: float | None = None) -> None:
        if self.worker is not None:
            self.worker.wait(timeout)

    # ---- actions -------------------------------------------------------------------------

    def echo(self) -> None:
        from ictview.pacs.connect import connect

        def work(target, _worker):
            client = connect(target)
            try:
                return client.echo()
            finally:
                client.close()

        self._run(work, lambda text: self.show_message(text), "Contacting the server…")

    def query(self) -> None:
        from ictview.pacs.connect import connect
        from ictview.pacs.query import query_studies

        pid, date, mod = (self.patient_id.text().strip(), self.study_date.text().strip(),
                          self.modality.text().strip())

        def work(target, _worker):
            client = connect(target)
            try:
                return query_studies(client, patient_id=pid, study_date=date, modality=mod)
            finally:
                client.close()

        self._run(work, self._show_studies, "Searching…")

    def _show_studies(self, studies) -> None:
        self.studies = list(studies)
        self.table.setRowCount(len(self.studies))
        for r, st in enumerate(self.studies):
            values = (_date(st.study_date), st.patient_id, st.accession_number,
                      "/".join(st.modalities), _series_text(st), st.study_uid)
            for c, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                item.setToolTip(v)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(
            4, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.show_message(f"{len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'} "
                          "found" + ("" if self.studies else " (check the filters)"))

    def retrieve(self) -> None:
        from ictview.pacs.connect import connect
        from ictview.pacs.pull import pull_studies
        from ictview.store.workspace import Workspace

        uids, root = self.selected_uids(), self.workspace
        site, role = self.site.currentText().strip(), self.role.currentText()
        if not uids or root is None:
            return

        def work(target, worker):
            client = connect(target)
            try:
                with Workspace.create(root) as ws:
                    return pull_studies(
                        ws, client, uids, site, role,
                        progress=lambda d, t, _m: worker.progressed.emit((d, t)),
                        cancelled=lambda: worker.cancelled)
            finally:
                client.close()

        self._run(work, self._retrieved, f"Retrieving {len(uids)} stud"
                  f"{'y' if len(uids) == 1 else 'ies'} into {site}…")

    def _retrieved(self, report) -> None:
        names = [s.exam for s in report.studies if s.status == "imported"]
        if names:
            self.imported.emit(names)
        if report.failed:
            self.show_message(report.failed[0].reason, error=True)
            return
        present = sum(s.status == "already present" for s in report.studies)
        slices = sum(s.slices for s in report.studies if s.status == "imported")
        self.show_message(f"Imported {len(names)} exam(s) ({slices} slices, {report.fetched} "
                          f"instances fetched in {report.seconds:.1f} s)"
                          + (f"; {present} already in the workspace" if present else ""))

    def send(self) -> None:
        from ictview.pacs.connect import connect
        from ictview.pacs.push import push_labelset
        from ictview.store.workspace import Workspace

        labelset, root, deid = self.labelset.currentText(), self.workspace, \
            self.deidentify.isChecked()

        def work(target, worker):
            client = connect(target)
            try:
                with Workspace.open(root) as ws:
                    return push_labelset(
                        ws, client, labelset, deidentify=deid,
                        progress=lambda d, t, _m: worker.progressed.emit((d, t)))
            finally:
                client.close()

        self._run(work, self._sent, f"Sending labelset {labelset}…")

    def _sent(self, report) -> None:
        sent = [e for e in report.exams if e.sent]
        refused = [e for e in sent if e.refused]
        skipped = [e for e in report.exams if e.skipped]
        if refused:
            e = refused[0]
            self.show_message(f"{e.exam}: the server refused {len(e.refused)} of {e.sent} "
                              f"instance(s) ({e.refused[0]})", error=True)
            return
        self.show_message(f"The server accepted {sum(e.accepted for e in sent)} DICOM SEG "
                          f"object(s) of {len(sent)} exam(s)"
                          + (f"; {len(skipped)} exam(s) without hemorrhage not sent"
                             if skipped else ""))

    def reject(self) -> None:
        if self.busy():
            self.cancel()
            self.wait(30)
        super().reject()
