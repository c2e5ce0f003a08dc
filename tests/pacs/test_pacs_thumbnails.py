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


def test_previews_count_towards_the_study_cache_cap_least_recently_shown_first(orthanc, pacs_env, tmp_path):
    import os
    import time

    from workbench.pacs.cache import StudyCache
    from workbench.pacs.client import retrieve_study
    from workbench.pacs.thumbnails import thumbnail_dir

    cache = StudyCache(tmp_path / "cache")
    client = connect(resolve_node("test"))
    thumbs = thumbnail_dir(cache.root)
    ct, mr = orthanc.ct, orthanc.mr
    for series in (ct, mr):
        series_thumbnail(client, series.study_uid, series.series_uid, cache_dir=thumbs)
    for index, png in enumerate(sorted(thumbs.iterdir())):  # both shown a while ago
        os.utime(png, (time.time() - 100 - index, time.time() - 100 - index))
    series_thumbnail(client, ct.study_uid, ct.series_uid, cache_dir=thumbs)  # the CT one shown again, from cache
    for _ in retrieve_study(client, mr.study_uid, cache.study_dir(mr.study_uid)):
        pass
    previews = {p.stem: size for p, _used, size in cache.previews()}
    assert set(previews) == {ct.series_uid, mr.series_uid}
    study_bytes = sum(size for _p, _u, size in cache.studies())
    assert cache.size() == study_bytes + sum(previews.values())
    cache.cap_bytes = cache.size() - 1  # one byte too many: the least recently shown preview goes
    assert cache.evict(keep={mr.study_uid}) == [thumbs / f"{mr.series_uid}.png"]
    assert [p.stem for p, _u, _s in cache.previews()] == [ct.series_uid] and cache.size() <= cache.cap_bytes
