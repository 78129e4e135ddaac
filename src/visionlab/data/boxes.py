"""Box-annotated photos: ``boxes.csv`` (one row per face) and PASCAL VOC XML folders (labelImg's format).

Both readers return ``AnnotatedImage`` records with boxes in pixel coordinates, ``x0, y0`` inclusive and ``x1, y1``
exclusive (a VOC ``xmax`` is inclusive, so ``x1 = xmax + 1``), clipped to the image. Labels are mapped to
visionlab's class names (``with_mask`` -> ``WithMask``, ``mask_weared_incorrect`` -> ``MaskWornIncorrectly``, ...);
a label outside that map is an error unless ``label_map`` names it, so a typo never becomes a class.
Every problem is one ``DataError`` line naming the file (and row) and what to do.
"""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

from ..errors import DataError

WITH_MASK, WITHOUT_MASK, INCORRECT = "WithMask", "WithoutMask", "MaskWornIncorrectly"
MASK_CLASSES = (WITH_MASK, WITHOUT_MASK, INCORRECT)
# the spellings of public face-mask sets (Kaggle's andrewmvd set, labelImg exports, chandrikadeb7's folders)
LABEL_ALIASES = {
    "with_mask": WITH_MASK, "withmask": WITH_MASK, "mask": WITH_MASK, "with mask": WITH_MASK,
    "without_mask": WITHOUT_MASK, "withoutmask": WITHOUT_MASK, "no_mask": WITHOUT_MASK, "nomask": WITHOUT_MASK,
    "no mask": WITHOUT_MASK, "without mask": WITHOUT_MASK,
    "mask_weared_incorrect": INCORRECT, "mask_worn_incorrectly": INCORRECT, "mask_worn_incorrect": INCORRECT,
    "maskwornincorrectly": INCORRECT, "incorrect_mask": INCORRECT, "incorrect": INCORRECT,
}
CSV_COLUMNS = ("image", "width", "height", "xmin", "ymin", "xmax", "ymax", "label")


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    label: str

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.w, self.h)


@dataclass
class AnnotatedImage:
    path: Path
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def canonical_label(label: str, label_map: Optional[Mapping[str, str]] = None, where: str = "") -> str:
    """visionlab's class name for an annotation label; ``DataError`` for one it does not know."""
    raw = label.strip()
    if label_map and raw in label_map:
        return label_map[raw]
    if raw in MASK_CLASSES:
        return raw
    key = raw.lower()
    if key in LABEL_ALIASES:
        return LABEL_ALIASES[key]
    known = sorted(set(LABEL_ALIASES) | set(MASK_CLASSES))
    raise DataError(f"{where}unknown label {raw!r}; known labels: {', '.join(known)} "
                    f"(map others with label_map / --label-map NAME=CLASS)")


def _box(xmin: float, ymin: float, xmax: float, ymax: float, width: int, height: int, label: str,
         where: str) -> Box:
    if xmax < xmin or ymax < ymin:
        raise DataError(f"{where}box ({xmin}, {ymin}, {xmax}, {ymax}) has xmax < xmin or ymax < ymin")
    # inclusive max -> exclusive; the source set has a few boxes one pixel past the right edge: clip them
    x0, y0 = max(0.0, xmin), max(0.0, ymin)
    x1, y1 = min(float(width), xmax + 1.0), min(float(height), ymax + 1.0)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise DataError(f"{where}box ({xmin}, {ymin}, {xmax}, {ymax}) lies outside the {width}x{height} image")
    return Box(x0, y0, x1, y1, label)


def _num(value: str, name: str, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}{name} is {value!r}, not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise DataError(f"{where}{name} is {value!r}, not a finite number")
    return v


def read_boxes_csv(path: str | Path, images: str | Path | None = None,
                   label_map: Optional[Mapping[str, str]] = None, check_images: bool = True) -> list[AnnotatedImage]:
    """``image,width,height,xmin,ymin,xmax,ymax,label`` rows -> one ``AnnotatedImage`` per image, in file order.

    ``images`` is the folder of the photos (default: ``images/`` beside the CSV, else the CSV's folder).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"box file {path} does not exist")
    folder = Path(images) if images is not None else (path.parent / "images" if (path.parent / "images").is_dir()
                                                      else path.parent)
    out: dict[str, AnnotatedImage] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected a header "
                                f"{','.join(CSV_COLUMNS)}")
            for line, row in enumerate(reader, start=2):
                where = f"{path}:{line}: "
                name = (row["image"] or "").strip()
                if not name:
                    raise DataError(f"{where}empty image name")
                width, height = int(_num(row["width"], "width", where)), int(_num(row["height"], "height", where))
                if width < 1 or height < 1:
                    raise DataError(f"{where}image size {width}x{height} is not positive")
                label = canonical_label(row["label"] or "", label_map, where)
                coords = [_num(row[k], k, where) for k in ("xmin", "ymin", "xmax", "ymax")]
                rec = out.get(name)
                if rec is None:
                    rec = out[name] = AnnotatedImage(folder / name, width, height)
                elif (rec.width, rec.height) != (width, height):
                    raise DataError(f"{where}{name} is {width}x{height} here but {rec.width}x{rec.height} above")
                rec.boxes.append(_box(*coords, width, height, label, where))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text CSV") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    records = list(out.values())
    if not records:
        raise DataError(f"{path} has no box rows")
    if check_images:
        _check_exist(records, str(path))
    return records


def read_voc(folder: str | Path, images: str | Path | None = None,
             label_map: Optional[Mapping[str, str]] = None, check_images: bool = True) -> list[AnnotatedImage]:
    """A folder of PASCAL VOC ``*.xml`` files (``annotations/`` or the folder itself), one per photo.

    The photo is ``<filename>`` in ``images`` (default: ``images/`` beside the XML folder, else the XML's own
    folder). An object with ``<difficult>1`` is kept (face-mask sets use it for small faces).
    """
    folder = Path(folder)
    xml_dir = folder / "annotations" if (folder / "annotations").is_dir() else folder
    files = sorted(p for p in xml_dir.glob("*.xml") if p.is_file())
    if not files:
        raise DataError(f"no PASCAL VOC .xml files in {xml_dir}")
    if images is not None:
        img_dir = Path(images)
    elif (xml_dir.parent / "images").is_dir():
        img_dir = xml_dir.parent / "images"
    else:
        img_dir = xml_dir
    records = []
    for x in files:
        where = f"{x}: "
        try:
            root = ET.parse(x).getroot()
        except ET.ParseError as e:
            raise DataError(f"{where}not valid XML ({e})") from None
        name = (root.findtext("filename") or "").strip()
        if not name:
            raise DataError(f"{where}no <filename>")
        try:
            width = int(_num(root.findtext("size/width") or "", "size/width", where))
            height = int(_num(root.findtext("size/height") or "", "size/height", where))
        except DataError:
            raise DataError(f"{where}no usable <size><width>/<height>") from None
        rec = AnnotatedImage(img_dir / name, width, height)
        for i, obj in enumerate(root.iter("object"), start=1):
            w = f"{x}: object {i}: "
            label = canonical_label(obj.findtext("name") or "", label_map, w)
            bb = obj.find("bndbox")
            if bb is None:
                raise DataError(f"{w}no <bndbox>")
            coords = [_num(bb.findtext(k) or "", k, w) for k in ("xmin", "ymin", "xmax", "ymax")]
            rec.boxes.append(_box(*coords, width, height, label, w))
        records.append(rec)
    if check_images:
        _check_exist(records, str(xml_dir))
    return records


def _check_exist(records: Iterable[AnnotatedImage], source: str) -> None:
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{source}: image {missing[0]} does not exist{more}; pass the photo folder with --images")


def read_annotations(source: str | Path, images: str | Path | None = None,
                     label_map: Optional[Mapping[str, str]] = None, check_images: bool = True) -> list[AnnotatedImage]:
    """``boxes.csv``, a folder holding one, or a VOC XML folder -> ``AnnotatedImage`` records."""
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return read_boxes_csv(p, images, label_map, check_images)
        raise DataError(f"{p}: expected a boxes .csv or a folder of PASCAL VOC .xml files")
    if p.is_dir():
        if (p / "boxes.csv").is_file():
            return read_boxes_csv(p / "boxes.csv", images, label_map, check_images)
        return read_voc(p, images, label_map, check_images)
    raise DataError(f"annotations {p}: no such file or folder; pass a boxes .csv or a PASCAL VOC folder")


def parse_label_map(spec: Optional[str]) -> dict[str, str]:
    """``"face_with_mask=WithMask,face_no_mask=WithoutMask"`` -> dict."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"--label-map entry {part!r} is not NAME=CLASS")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out
