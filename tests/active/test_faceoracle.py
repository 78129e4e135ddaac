"""The box oracle: a pooled face's label from boxes.csv by IoU."""
from __future__ import annotations

from visionlab.active.faceoracle import BoxOracle


def test_oracle_by_iou(tmp_path):
    csv = tmp_path / "boxes.csv"
    csv.write_text("image,width,height,xmin,ymin,xmax,ymax,label\n"
                   "a.jpg,100,100,10,10,29,29,with_mask\n"
                   "a.jpg,100,100,60,60,79,89,mask_weared_incorrect\n")
    o = BoxOracle(csv)
    assert o.label("/x/a.jpg", [10, 10, 20, 20]) == "WithMask"
    assert o.label("a.jpg", [58, 62, 22, 28]) == "MaskWornIncorrectly"
    assert o.label("a.jpg", [40, 40, 10, 10]) == "NotAFace"
    assert o.label("b.jpg", [10, 10, 20, 20]) is None
    # a copy of the photo at half size: boxes scale back
    assert o.label("a.jpg", [5, 5, 10, 10], scale=(0.5, 0.5)) == "WithMask"
