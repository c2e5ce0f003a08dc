"""Heat maps are stored in sessions: the float map, the uncertainty mask, the record and the style come
back as saved; sessions without heat maps have none; a map that does not fit the image is refused."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import onnx_factory as F
import pytest
from explain_models import region_classifier

from workbench.core.document import Document
from workbench.inference.explain import run_explain
from workbench.inference.explain.store import heatmaps_of
from workbench.io import read_image
from workbench.session import SessionError, load_session, save_session

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def test_heatmaps_round_trip_through_a_session(tmp_path):
    src = tmp_path / "img.npy"
    img = np.zeros((32, 40), np.float32)
    img[4:12, 20:30] = 1.0
    np.save(src, img)
    plugin = F.write_plugin(tmp_path / "roi", region_classifier((4, 12, 20, 30)),
                            {"id": "roi", "task": "classification",
                             "input": {"color": "gray", "resize": "none"},
                             "output": {"activation": "softmax", "labels": ["bright", "dark"]}})
    seg = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1),
                         {"id": "seg", "task": "segmentation", "input": {"color": "gray", "resize": "none"},
                          "output": {"classes": [{"name": "background"}, {"name": "blob"}]}})
    doc = Document(read_image(src))
    store = heatmaps_of(doc)
    sal = run_explain(plugin, doc.image, method="rise", n_masks=32, seed=4)
    ent = run_explain(seg, doc.image, method="entropy")
    store.add(sal)
    store.add(ent)
    store.set_style(cmap="viridis", opacity=0.25, visible=False)  # the current one: the entropy map
    out = save_session(doc, tmp_path / "case")
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert [h["method"] for h in manifest["heatmaps"]] == ["rise", "entropy"]
    loaded, _view = load_session(out)
    back = heatmaps_of(loaded)
    assert [e.method for e in back.items] == ["rise", "entropy"]
    np.testing.assert_array_equal(back.items[0].map, sal.map)
    np.testing.assert_array_equal(back.items[1].mask, ent.mask)
    assert back.items[0].target == sal.target and back.items[0].cost.model_runs == 33
    assert back.items[0].info.sha256 == sal.info.sha256 and back.items[1].summary == ent.summary
    assert (back.styles[1].cmap, back.styles[1].opacity, back.styles[1].visible) == ("viridis", 0.25, False)
    assert back.items[0].peak == sal.peak
    # File > Export report (and `workbench export --report`) of the session writes the heat maps' reports too
    from workbench.export.session_exports import export_reports
    from workbench.session import read_session

    files = export_reports(read_session(out), tmp_path / "reports", formats=("html",))
    names = sorted(p.name for p in files)
    assert names == ["img_heatmap1_rise_saliency_report.html", "img_heatmap2_entropy_saliency_report.html"]
    assert "<h1>Saliency report</h1>" in (tmp_path / "reports" / names[0]).read_text()
    assert "<h1>Uncertainty report</h1>" in (tmp_path / "reports" / names[1]).read_text()
    # a session saved without heat maps has none (and no 'heatmaps' key)
    plain = Document(read_image(src))
    out2 = save_session(plain, tmp_path / "plain")
    with zipfile.ZipFile(out2) as zf:
        assert "heatmaps" not in json.loads(zf.read("manifest.json"))
    assert heatmaps_of(load_session(out2)[0]).items == []
    # a heat map that does not fit the image is refused with one line
    bad = tmp_path / "bad.wbsession"
    with zipfile.ZipFile(out) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json":
                m = json.loads(data)
                m["heatmaps"][0]["file"] = m["heatmaps"][1]["file"]
                m["heatmaps"][0]["slice"] = 5
                data = json.dumps(m).encode()
            zout.writestr(item, data)
    with pytest.raises(SessionError, match="does not fit the image"):
        load_session(bad)
