"""Help > Keyboard shortcuts (the generated table) and Help > User guide (the bundled guide, offline)."""
from __future__ import annotations

from ..qt import Qt, QtCore, QtGui, QtWidgets
from .guide import guide_path
from .shortcuts import collect


class ShortcutsDialog(QtWidgets.QDialog):
    """A table of every shortcut of ``window`` (:func:`~.shortcuts.collect`), searchable."""

    def __init__(self, window: QtWidgets.QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = collect(window, native=True)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter: a key or a word")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.table = QtWidgets.QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Keys", "Command", "Where"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        for r, row in enumerate(self.rows):
            for c, text in enumerate((" or ".join(row.keys), row.description, row.group)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(720, 560)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r, row in enumerate(self.rows):
            hay = " ".join((*row.keys, row.description, row.group)).lower()
            self.table.setRowHidden(r, bool(needle) and needle not in hay)


class UserGuideDialog(QtWidgets.QDialog):
    """The bundled user guide rendered from Markdown in a ``QTextBrowser``: no browser, no network."""

    def __init__(self, window: QtWidgets.QWidget | None = None) -> None:
        super().__init__(window)
        self.setWindowTitle("Workbench user guide")
        path = guide_path()
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setOpenLinks(False)  # links leave the guide only on purpose (see _on_link)
        self.browser.anchorClicked.connect(self._on_link)
        self.browser.setSearchPaths([str(path.parent)])
        if path.is_file():
            self.browser.setSource(QtCore.QUrl.fromLocalFile(str(path)),
                                   QtGui.QTextDocument.ResourceType.MarkdownResource)
        else:  # a damaged install: say so instead of an empty window
            self.browser.setPlainText(f"The user guide is missing from this installation ({path}).")
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(900, 720)
        self._fit_images()

    def _images(self):
        """(cursor, format) of every picture of the page."""
        doc = self.browser.document()
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                fmt = fragment.charFormat()
                if fragment.isValid() and fmt.isImageFormat():
                    cursor = QtGui.QTextCursor(doc)
                    cursor.setPosition(fragment.position())
                    cursor.setPosition(fragment.position() + fragment.length(), QtGui.QTextCursor.MoveMode.KeepAnchor)
                    yield cursor, fmt.toImageFormat()
                it += 1
            block = block.next()

    def image_widths(self) -> list[float]:
        """The displayed width of each picture (tests)."""
        return [fmt.width() for _cursor, fmt in self._images()]

    def _fit_images(self) -> None:
        """Screenshots are wider than the dialog: show each at most as wide as the page, aspect kept."""
        room = max(self.browser.viewport().width() - 24, 100)
        doc = self.browser.document()
        for cursor, fmt in list(self._images()):
            image = doc.resource(QtGui.QTextDocument.ResourceType.ImageResource, QtCore.QUrl(fmt.name()))
            if not isinstance(image, (QtGui.QImage, QtGui.QPixmap)) or image.width() <= 0:
                continue
            width = min(float(image.width()), float(room))
            fmt.setWidth(width)
            fmt.setHeight(width * image.height() / image.width())
            cursor.setCharFormat(fmt)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit_images()

    def _on_link(self, url: QtCore.QUrl) -> None:
        # other pages of docs/ are not bundled and nothing here may open the network: name the link instead
        if url.scheme() in ("", "file") and not url.path():
            self.browser.scrollToAnchor(url.fragment())
            return
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), f"Not part of the offline guide: {url.toString()}",
                                    self.browser)


def show_shortcuts(window: QtWidgets.QMainWindow) -> ShortcutsDialog:
    dialog = ShortcutsDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.show()
    return dialog


def show_user_guide(window: QtWidgets.QMainWindow) -> UserGuideDialog:
    dialog = UserGuideDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.show()
    return dialog


__all__ = ["ShortcutsDialog", "UserGuideDialog", "show_shortcuts", "show_user_guide"]
