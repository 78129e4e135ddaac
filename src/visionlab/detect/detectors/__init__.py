"""Face detectors beyond the two in ``detect/faces.py`` (OpenCV YuNet, Haar): one module each.

``FACE_DETECTORS`` imports every module here the first time it is asked for a name; a module registers its
class with ``@FACE_DETECTORS.register("name", needs_file=...)``. Adding a detector is adding a file here.
"""
