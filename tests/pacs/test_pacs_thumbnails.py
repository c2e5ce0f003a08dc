"""Series previews against the real Orthanc: the middle instance (C-GET of that one instance, or rendered
by the DICOMweb server), cached, cancellable."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from workbench.core.errors import CancelledError
from workbench.pacs.client import connect
from workbench.pacs.nodes import resolve_node
from workbench.pacs.thumbnails import render, series_thumbnail


def test_dimse_preview_is_the_rendered_middle_instance_and_is_cached(orthanc, pacs_env, tmp_path):
    ct = orthanc.ct
    client = connect(resolve_node("test"))
    image = series_thumbnail(client, ct.study_uid, ct.series_uid, cache_dir=tmp_path / "thumbs")
    middle = sorted(ct.files, key=lambda f: pydicom.dcmread(f).InstanceNumber)[len(ct.files) // 2]
    np.testing.assert_array_equal(image, render(pydicom.dcmread(middle)))
    assert image.dtype == np.uint8 and max(image.shape) <= 64 and image.max() > image.min()
    assert (tmp_path / "thumbs" / f"{ct.series_uid}.png").is_file()

    class Offline:  # the cache answers: no network at all
        node = client.node

        def __getattr__(self, name):
            raise AssertionError(f"{name} called: the preview should come from the cache")

    np.testing.assert_array_equal(series_thumbnail(Offline(), ct.study_uid, ct.series_uid,
                                                   cache_dir=tmp_path / "thumbs"), image)


def test_preview_is_cancellable(orthanc, pacs_env, tmp_path):
    client = connect(resolve_node("test"))
    with pytest.raises(CancelledError):
        series_thumbnail(client, orthanc.mr.study_uid, orthanc.mr.series_uid, cache_dir=tmp_path / "t",
                         cancel=lambda: True)
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").iterdir())


def test_dicomweb_preview_is_rendered_by_the_server(dicomweb, pacs_env, tmp_path, monkeypatch):
    from workbench.pacs import web

    client = connect(resolve_node("web"))
    calls = []
    monkeypatch.setattr(web.WebClient, "retrieve_series", lambda *a, **k: calls.append(a) or iter(()))
    image = series_thumbnail(client, dicomweb.mr.study_uid, dicomweb.mr.series_uid, cache_dir=tmp_path / "t")
    assert calls == [], "the server rendered it: no instance was retrieved"
    assert image.dtype == np.uint8 and image.shape[:2] == (16, 16) and image.max() > image.min()
