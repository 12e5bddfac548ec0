"""Widgets of a blinded test-retest session: the banner, the progress panel, the
message page (washout, ready, finished). Display only: RetestSessionWindow fills them."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

Qt = QtCore.Qt

BANNER_CSS = """
QFrame#retestBanner { background: #3a2a0c; border-bottom: 2px solid #d9a441; }
QLabel#retestBadge { background: #d9a441; color: #1b1e22; font-weight: 700; font-size: 10pt;
                     border-radius: 3px; padding: 3px 8px; }
QLabel#retestProgress { color: #ffffff; font-size: 15pt; font-weight: 600; }
QLabel#retestStudy { color: #e9d7b0; font-size: 10pt; }
QLabel#retestBlinded { color: #e9d7b0; font-size: 9.5pt; }
"""

PANEL_CSS = """
QFrame#retestPanel { background: #1b1e22; }
QLabel#retestExam { color: #e8ecf0; font-size: 12pt; font-weight: 600; }
QLabel#retestMeta { color: #8a939d; }
QPushButton#retestDone { background: #2f6b3a; border: 1px solid #4f9a5c; color: #ffffff;
                         font-size: 11pt; font-weight: 600; padding: 8px 10px; }
QPushButton#retestDone:hover { background: #377a44; }
QPushButton#retestDone:disabled { background: #23272c; color: #5c636b; border-color: #2f353c; }
QProgressBar { border: 1px solid #3a4149; border-radius: 3px; background: #121417;
               text-align: center; color: #d7dce2; height: 16px; }
QProgressBar::chunk { background: #3d8fd6; }
"""

PAGE_CSS = """
QLabel#retestPageTitle { color: #ffffff; font-size: 18pt; font-weight: 600; }
QLabel#retestPageText { color: #c9d1d9; font-size: 11.5pt; }
QLabel#retestPageHint { color: #8a939d; font-size: 10pt; }
QPushButton#retestStart { background: #2b5d8a; border: 1px solid #3d8fd6; color: #ffffff;
                          font-size: 12pt; font-weight: 600; padding: 10px 22px; }
"""

BLINDED_TEXT = (
    "Blinded: only your own labels of this repetition are shown. Your other repetitions, "
    "other raters' labels and model predictions are hidden; exams come in a fixed order."
)


class RetestBanner(QtWidgets.QFrame):
    """The always-visible strip: BLINDED badge, 'Repetition k of R — exam i of n', study."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("retestBanner")
        self.setStyleSheet(BANNER_CSS)
        self.badge = QtWidgets.QLabel("BLINDED TEST-RETEST SESSION")
        self.badge.setObjectName("retestBadge")
        self.progress = QtWidgets.QLabel("")
        self.progress.setObjectName("retestProgress")
        self.study = QtWidgets.QLabel("")
        self.study.setObjectName("retestStudy")
        self.study.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.blinded = QtWidgets.QLabel(BLINDED_TEXT)
        self.blinded.setObjectName("retestBlinded")
        self.blinded.setWordWrap(True)
        top = QtWidgets.QHBoxLayout()
        top.setSpacing(14)
        top.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.progress, 1)
        top.addWidget(self.study)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(14, 8, 14, 8)
        lay.setSpacing(3)
        lay.addLayout(top)
        lay.addWidget(self.blinded)

    def show_state(self, progress: str, study: str) -> None:
        self.progress.setText(progress)
        self.study.setText(study)


class RetestPanel(QtWidgets.QFrame):
    """Right column, above the tool panel: the exam, progress, time, 'Done, next exam'."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("retestPanel")
        self.setStyleSheet(PANEL_CSS)
        title = QtWidgets.QLabel("SESSION")
        title.setObjectName("panelTitle")
        self.exam = QtWidgets.QLabel("")
        self.exam.setObjectName("retestExam")
        self.bar = QtWidgets.QProgressBar()
        self.bar.setTextVisible(True)
        self.meta = QtWidgets.QLabel("")
        self.meta.setObjectName("retestMeta")
        self.meta.setTextFormat(Qt.TextFormat.PlainText)
        self.meta.setWordWrap(True)
        self.done = QtWidgets.QPushButton("Done, next exam  ▸")
        self.done.setObjectName("retestDone")
        self.done.setToolTip(
            "Finish this exam and go to the next one in the session order (Ctrl+Return). "
            "An exam with nothing painted is recorded as no hemorrhage. You cannot come back."
        )
        self.hint = QtWidgets.QLabel(
            "Labels are saved after every stroke. Ctrl+Enter = Done. The order is fixed: "
            "no going back."
        )
        self.hint.setObjectName("retestMeta")
        self.hint.setWordWrap(True)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 8, 6)
        lay.setSpacing(6)
        lay.addWidget(title)
        lay.addWidget(self.exam)
        lay.addWidget(self.bar)
        lay.addWidget(self.meta)
        lay.addWidget(self.done)
        lay.addWidget(self.hint)

    def show_exam(self, exam: str, k: int, n: int, meta: str) -> None:
        self.exam.setText(f"Exam {k} of {n}  ·  {exam}")
        self.bar.setRange(0, max(n, 1))
        self.bar.setValue(k - 1)
        self.bar.setFormat(f"{k - 1} of {n} done")
        self.meta.setText(meta)


class RetestMessagePage(QtWidgets.QWidget):
    """Shown instead of the images: washout countdown, ready to start, finished."""

    start_clicked = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(PAGE_CSS)
        self.title = QtWidgets.QLabel("")
        self.title.setObjectName("retestPageTitle")
        self.text = QtWidgets.QLabel("")
        self.text.setObjectName("retestPageText")
        self.hint = QtWidgets.QLabel("")
        self.hint.setObjectName("retestPageHint")
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for lab in (self.title, self.text, self.hint):
            lab.setWordWrap(True)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.start = QtWidgets.QPushButton("")
        self.start.setObjectName("retestStart")
        self.start.clicked.connect(self.start_clicked)
        # a fixed-width column: word-wrapped labels need a width to wrap at
        box = QtWidgets.QWidget()
        box.setFixedWidth(820)
        bl = QtWidgets.QVBoxLayout(box)
        bl.setSpacing(16)
        bl.addWidget(self.title)
        bl.addWidget(self.text)
        bl.addWidget(self.start, 0, Qt.AlignmentFlag.AlignHCenter)
        bl.addWidget(self.hint)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(3)

    def show_message(self, title: str, text: str, hint: str = "", start: str = "") -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.start.setText(start)
        self.start.setVisible(bool(start))
