"""RSNA label parsing (cxrsal.data.rsna) with every Kaggle quirk, on hand-written CSVs."""

import numpy as np
import pytest

from cxrsal.data import rsna
from cxrsal.data.dicom import write_dicom
from cxrsal.errors import DataError

PX = np.full((16, 16), 100, np.uint8)


def rsna_root(tmp_path, labels, class_info=None, images=()):
    (tmp_path / "stage_2_train_images").mkdir()
    (tmp_path / "stage_2_train_labels.csv").write_text(labels)
    if class_info is not None:
        (tmp_path / "stage_2_detailed_class_info.csv").write_text(class_info)
    for pid in images:
        write_dicom(tmp_path / "stage_2_train_images" / f"{pid}.dcm", PX)
    return tmp_path


LABELS = """patientId,x,y,width,height,Target
p-neg,,,,,0
p-two,264.0,152.0,213.0,379.0,1
p-two,562.0,152.0,256.0,453.0,1
p-one,10,20,30,40,1
p-notnormal,,,,,0
"""
CLASSES = """patientId,class
p-neg,Normal
p-two,Lung Opacity
p-two,Lung Opacity
p-one,Lung Opacity
p-notnormal,No Lung Opacity / Not Normal
"""


def test_rsna_quirks(tmp_path):
    root = rsna_root(tmp_path, LABELS, CLASSES, ["p-neg", "p-two", "p-one", "p-notnormal"])
    out = rsna.read_labels(root)
    items = {it.image_id: it for it in out.items}
    assert sorted(items) == ["p-neg", "p-one", "p-two"]           # cohort rule dropped one
    assert out.excluded == {"class 'No Lung Opacity / Not Normal' (cohort rule)": 1}
    assert items["p-two"].boxes == ((264.0, 152.0, 213.0, 379.0), (562.0, 152.0, 256.0, 453.0))
    assert items["p-two"].label == 1 and items["p-neg"].label == 0 and items["p-neg"].boxes == ()
    assert items["p-two"].source == "stage_2_train_labels.csv lines 3-4"
    assert out.skipped == [] and out.notes == []


def test_rsna_without_class_info_keeps_all_and_says_so(tmp_path):
    root = rsna_root(tmp_path, LABELS, None, ["p-neg", "p-two", "p-one", "p-notnormal"])
    out = rsna.read_labels(root)
    assert len(out.items) == 4 and not out.excluded
    assert "not found" in out.notes[0] and "cohort rule" in out.notes[0]


def test_rsna_bad_rows_and_missing_images(tmp_path):
    labels = """patientId,x,y,width,height,Target
a,,,,,2
b,1,2,,4,1
c,1,2,3,4,0
d,1,2,3,4,1
d,,,,,0
e,,,,,0
f,x,2,3,4,1
"""
    root = rsna_root(tmp_path, labels, None, ["a", "b", "c", "d"])
    out = rsna.read_labels(root)
    reasons = {s.image_id: (s.source, s.reason) for s in out.skipped}
    assert reasons["a"] == ("stage_2_train_labels.csv line 2", "Target '2' is not 0 or 1")
    assert "empty" in reasons["b"][1]
    assert "Target 0 but the row has a box" in reasons["c"][1]
    assert "disagree" in reasons["d"][1]
    assert reasons["e"][1].startswith("image file missing")
    assert "not numbers" in reasons["f"][1]
    assert out.items == []


def test_rsna_class_contradiction(tmp_path):
    labels = "patientId,x,y,width,height,Target\nq,,,,,0\n"
    root = rsna_root(tmp_path, labels, "patientId,class\nq,Lung Opacity\n", ["q"])
    out = rsna.read_labels(root)
    assert out.items == [] and "contradicts class 'Lung Opacity'" in out.skipped[0].reason


def test_rsna_header_errors(tmp_path):
    root = rsna_root(tmp_path, "patientId,x,y,w,h,Target\n", None)
    with pytest.raises(DataError, match="lacks column.*width"):
        rsna.read_labels(root)
    (tmp_path / "stage_2_train_labels.csv").unlink()
    with pytest.raises(DataError, match="stage_2_train_labels.csv: file not found"):
        rsna.read_labels(root)
