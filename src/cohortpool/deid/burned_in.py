"""Which instances may have identifiers burned into their pixels (quarantined by default).

The header can be cleaned, pixels cannot without looking at them, so an instance is held back when
it says so (Burned In Annotation (0028,0301) = YES) or when its SOP class is one that typically
carries burned-in text whatever the flag says: secondary captures (screenshots, scanned forms),
ultrasound (patient banner in the image; the retired ultrasound classes too, which older machines
still send), encapsulated documents, and endoscopic and photographic images, still or video (a
wristband, a face, a label in the picture) (PS3.15 E.3.1 lists these as the classes needing the
Clean Pixel Data option). Instances flagged Recognizable Visual Features (0028,0302) = YES (a face in
a photograph, a volume rendering of a head) are held back for the same reason: their pixels identify.
A consortium may allow them explicitly.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

_BURNED_IN_ANNOTATION = 0x00280301
_RECOGNIZABLE_VISUAL_FEATURES = 0x00280302
_SOP_CLASS_UID = 0x00080016

#: SOP class UID -> short name (PS3.4 Annex B); all may carry burned-in identifiers
BURNED_IN_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image",
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image (Retired)",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image (Retired)",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VL Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "Video Photographic Image",
}


def _first(ds: Dataset, tag: int) -> str:
    """The first value of an ASCII attribute (CS, UI), read from the raw bytes while still raw: the
    check converts nothing in the header it is given."""
    elem = ds.get_item(tag)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        text = (elem.value or b"").decode("ascii", "replace")
    else:
        value = elem.value
        text = (
            "\\".join(map(str, value)) if isinstance(value, list | tuple | MultiValue) else str(value or "")
        )
    return text.split("\\")[0].strip(" \x00")


def burned_in_reason(ds: Dataset) -> str | None:
    """Why this instance may carry burned-in identifiers, or ``None``."""
    if _first(ds, _BURNED_IN_ANNOTATION).upper() == "YES":
        return "burned-in annotation: Burned In Annotation (0028,0301) is YES"
    if _first(ds, _RECOGNIZABLE_VISUAL_FEATURES).upper() == "YES":
        return "burned-in annotation: Recognizable Visual Features (0028,0302) is YES: pixels may show a face"
    sop_class = _first(ds, _SOP_CLASS_UID)
    if sop_class in BURNED_IN_CLASSES:
        name = BURNED_IN_CLASSES[sop_class]
        return f"burned-in annotation: SOP class {name} ({sop_class}) may carry text in its pixels"
    return None
