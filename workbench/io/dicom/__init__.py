"""DICOM reader: single file, multi-frame file, or a folder holding one or more series.

How a folder is read (one pass over the headers, then one read of the pixels):

1. Every file is parsed once with ``pydicom.dcmread(defer_size=...)``: the header is parsed, the pixel
   data is *skipped* (pydicom records its file offset instead of reading it). Files without the DICOM
   preamble are ignored; a file that has it but does not parse fails the whole read (never a series with
   a silently missing slice).
2. Image files are grouped by SeriesInstanceUID; the largest series is chosen unless ``series_uid`` is
   given. Slices are sorted by ImagePositionPatient projected on the slice normal (cross product of the
   ImageOrientationPatient cosines), falling back to InstanceNumber; the z spacing comes from the sorted
   positions.
3. One output array is allocated for the whole series and each slice's pixel bytes are read straight into
   it (``readinto`` at the recorded offset) - at most one copy of the volume is ever in memory, and the
   header pass + pixel read together cost about the same as a bare ``dcmread`` + ``np.frombuffer`` loop
   (see tests/bench/test_bench_io.py). Compressed, colour, palette and other unusual slices go through
   pydicom's own decoders (``pixel_array``, with the pylibjpeg codecs) one slice at a time into the same
   array.

Values: the modality LUT is applied (RescaleSlope/Intercept, or a Modality LUT Sequence via pydicom's
``apply_modality_lut``); CT is always float32 Hounsfield units, other modalities keep their stored dtype
unless a non-identity rescale forces float32. The VOI window (first value when multi-valued) becomes
``ImageVolume.window``; MONOCHROME1 sets ``invert_display``.

Modules, in the order a read goes through them: :mod:`.header` (one file's header, parsed once),
:mod:`.scan` (a folder's files grouped by series), :mod:`.geometry` (slice order, spacing, affine),
:mod:`.pixels` (the pixel bytes into one array), :mod:`.volume` (the entry points, building the
``ImageVolume``).
"""
